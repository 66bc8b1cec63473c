"""flowgen's vector flows against zuko's on the 2-D toys (issue 14 item 7, acceptance 2).

    .venv/bin/python bench/toys.py                              # everything: 3 seeds, 2,000 steps
    .venv/bin/python bench/toys.py --toys checkerboard --models nsf_c --seeds 0 --steps 500
    .venv/bin/python bench/toys.py --jobs 2 --results runs.jsonl --markdown bench/toys.md

Without ``--models``: MAF, NSF-C and NSF-AR on every toy, and the affine coupling on the
checkerboard alone (the acceptance's RQ-against-affine comparison). ``--results FILE`` keeps every
finished run as a JSON line and reuses the runs already there with the same options (resume);
``--table-only`` tabulates them without running anything (runs made apart, or cut short).

For every (toy, model, seed) one process trains flowgen's model and zuko's equivalent side by side
on the same batches: a plain PyTorch loop (Adam 1e-3, batch 512, no clipping, no warm-up, no
Lightning on either side), one thread. The steps alternate in blocks of ``--block`` (flowgen's
block, then zuko's), so both see the same machine load; the step-time ratio is flowgen's training
time over zuko's, evaluation excluded. Data: flowgen's :class:`~flowgen.data.vectors.ToyDataModule`
(data seed 0: 50,000 training and 20,000 test points, the same for every model and seed); each
seed draws its own batch order and both models' initial weights. Reported: the test NLL in nats
minus the data's entropy over the same 20,000 test points (the Monte Carlo floor any model can
reach), mean and std over seeds, after each of ``--steps``.

The models (the same depth, width, bins and spline bound on both sides; flowgen's depth and
widths are those of its configs/model/*.yaml):

* ``maf``: 5 affine MADE layers, 2 hidden layers of 64, the order reversed between layers.
  flowgen ``MAF(transform="affine")`` | ``zuko.flows.MAF(2, transforms=5)``.
* ``nsf_ar``: the same with rational-quadratic splines of 8 bins on ``[-B, B]``.
  flowgen ``MAF(transform="spline")`` | ``zuko.flows.MAF`` with zuko's ``MonotonicRQSTransform``
  (exactly ``zuko.flows.NSF``, whose bound, 5, is no argument, with the bound set to ``B``).
* ``nsf_c``: 6 couplings of RQ splines (8 bins on ``[-B, B]``), MLPs of 2 x 128, alternating
  halves. flowgen ``CouplingMLP(transform="spline")`` | ``zuko.flows.NICE`` with
  ``MonotonicRQSTransform``: a true coupling (one half kept). ``zuko.flows.NSF(passes=2)`` is
  not: with 2 features, 2 passes is fully autoregressive (the first entry is transformed too), so
  it would be ``nsf_ar`` again.
* ``affine_c``: 8 affine couplings, MLPs of 2 x 64 (configs/model/coupling_mlp.yaml).
  flowgen ``CouplingMLP(transform="affine")`` | ``zuko.flows.NICE`` (its default affine map).

What differs (each side's own design, not tuned): flowgen starts every layer as the identity (zero
last layer), zuko from PyTorch's default initialisation; flowgen's affine map bounds the log-scale
with RealNVP's tanh, zuko's with a soft clip at ``log 1e-3``; flowgen's splines floor bin widths,
heights and derivatives at 1e-3 (nflows' parametrisation), zuko's squashes the raw parameters and
takes ``exp`` of the derivatives; zuko's MADE merges outputs with the same dependencies. flowgen's
config extras (actnorm, residual MADEs, configs/model/nsf_*.yaml) are off here: zuko has no
actnorm, and the comparison is of the flows. ``--tail-bound`` defaults to zuko's 5.

A benchmark that prints figures, not a test (tests/bench/test_toys_bench.py runs its code path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import torch

TOYS = ("checkerboard", "two_moons", "eight_gaussians")
MODELS = ("maf", "nsf_c", "nsf_ar", "affine_c")
#: model -> (layers, hidden features, hidden layers)
SIZES = {"maf": (5, 64, 2), "nsf_ar": (5, 64, 2), "nsf_c": (6, 128, 2), "affine_c": (8, 64, 2)}
BINS = 8
#: Acceptance 2 (issue 14): (toy, model, steps, the most test NLL - entropy may be, in nats).
THRESHOLDS = [("checkerboard", "nsf_c", 2000, 0.15), ("checkerboard", "nsf_ar", 2000, 0.15),
              ("two_moons", "nsf_c", 1000, 0.04), ("eight_gaussians", "maf", 2000, 0.25),
              ("eight_gaussians", "nsf_c", 1000, 0.08)]
MAX_TIME_RATIO = 1.3


def build_flowgen(model: str, tail_bound: float) -> torch.nn.Module:
    """flowgen's ``model`` on 2-D vectors: ``log_prob(x [B, 2]) -> [B]``."""
    from flowgen.models import MAF, CouplingMLP

    layers, width, depth = SIZES[model]
    if model in ("maf", "nsf_ar"):
        return MAF((2,), layers=layers, hidden_features=width, hidden_layers=depth,
                   transform="affine" if model == "maf" else "spline", bins=BINS,
                   tail_bound=tail_bound, permutation="reverse", norm="none")
    return CouplingMLP((2,), couplings=layers, hidden_features=width, hidden_layers=depth,
                       transform="spline" if model == "nsf_c" else "affine", bins=BINS,
                       tail_bound=tail_bound)


def build_zuko(model: str, tail_bound: float) -> torch.nn.Module:
    """zuko's equivalent of ``model`` (a lazy flow: ``flow()`` is the distribution)."""
    import zuko

    layers, width, depth = SIZES[model]
    spline = dict(univariate=partial(zuko.transforms.MonotonicRQSTransform, bound=tail_bound),
                  shapes=[(BINS,), (BINS,), (BINS - 1,)])
    options = dict(transforms=layers, hidden_features=[width] * depth)
    if model == "maf":
        return zuko.flows.MAF(2, **options)
    if model == "nsf_ar":
        return zuko.flows.MAF(2, **options, **spline)
    return zuko.flows.NICE(2, **options, **(spline if model == "nsf_c" else {}))


def log_prob_fn(side: str, net: torch.nn.Module):
    return net.log_prob if side == "flowgen" else (lambda x: net().log_prob(x))


@torch.no_grad()
def test_nll(log_prob, x: torch.Tensor, chunk: int = 5000) -> float:
    """Mean ``-log p`` in nats over ``x [N, 2]``."""
    return -torch.cat([log_prob(part) for part in x.split(chunk)]).double().mean().item()


def run_one(toy: str, model: str, seed: int, steps: list[int], batch: int = 512,
            lr: float = 1e-3, block: int = 25, tail_bound: float = 5.0) -> dict:
    """Train flowgen's and zuko's ``model`` on ``toy`` side by side; the gaps after each of
    ``steps`` and each side's seconds per training step."""
    torch.set_num_threads(1)
    from flowgen.data.vectors import ToyDataModule

    data = ToyDataModule(toy, seed=0)
    train, test = data.points("train"), data.points("test")
    entropy = data.entropy()
    sides = {}
    for side, build in (("flowgen", build_flowgen), ("zuko", build_zuko)):
        torch.manual_seed(seed)  # both sides' initial weights from the run's seed
        net = build(model, tail_bound)
        sides[side] = dict(net=net, log_prob=log_prob_fn(side, net), seconds=0.0,
                           opt=torch.optim.Adam(net.parameters(), lr=lr), gaps={}, bad=0)
    order = torch.Generator().manual_seed(seed)
    batches, position, done = torch.randperm(len(train), generator=order), 0, 0
    while done < max(steps):
        n = min(block, max(steps) - done, *(s - done for s in steps if s > done))
        if position + n * batch > len(batches):  # a new epoch: a fresh order, whole batches
            batches, position = torch.randperm(len(train), generator=order), 0
        xs = [train[batches[position + i * batch:position + (i + 1) * batch]] for i in range(n)]
        position += n * batch
        for side in sides.values():
            start = time.perf_counter()
            for x in xs:
                loss = -side["log_prob"](x).mean()
                side["opt"].zero_grad(set_to_none=True)
                loss.backward()
                side["opt"].step()
                side["bad"] += not torch.isfinite(loss).item()
            side["seconds"] += time.perf_counter() - start
        done += n
        if done in steps:
            for side in sides.values():
                side["gaps"][done] = test_nll(side["log_prob"], test) - entropy
    return dict(toy=toy, model=model, seed=seed, entropy=entropy,
                **{name: dict(gaps=s["gaps"], step_s=s["seconds"] / done, bad=s["bad"])
                   for name, s in sides.items()})


def _job(args: tuple) -> dict:
    toy, model, seed, options, results_file = args
    result = run_one(toy, model, seed, **options)
    if results_file:
        with open(results_file, "a") as f:
            f.write(json.dumps(dict(result, options=options)) + "\n")
    line = "  ".join(f"{k}: flowgen {result['flowgen']['gaps'][k]:.4f} "
                     f"zuko {result['zuko']['gaps'][k]:.4f}" for k in options["steps"])
    ratio = result["flowgen"]["step_s"] / result["zuko"]["step_s"]
    print(f"[{toy} {model} seed {seed}] {line}  time ratio {ratio:.2f} "
          f"(flowgen {1e3 * result['flowgen']['step_s']:.1f} ms/step)", flush=True)
    return result


def _done_runs(results_file: str | None, options: dict, any_steps: bool = False
               ) -> dict[tuple, dict]:
    """(toy, model, seed) -> a run already in ``results_file`` with the same options (with
    ``any_steps``, evaluated after any steps)."""
    if not results_file or not os.path.exists(results_file):
        return {}
    done = {}
    with open(results_file) as f:
        for line in f:
            result = json.loads(line)
            theirs, ours = result.pop("options"), dict(options)
            if any_steps:
                theirs["steps"] = ours["steps"] = None
            if theirs == ours:
                for side in ("flowgen", "zuko"):  # JSON keys are strings
                    result[side]["gaps"] = {int(k): v for k, v in result[side]["gaps"].items()}
                done[result["toy"], result["model"], result["seed"]] = result
    return done


def _mean_std(values: list[float], digits: int = 3) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def summarise(results: list[dict], steps: list[int]) -> tuple[list[list[str]], list[list[str]]]:
    """(the results table's rows, the acceptance checks' rows)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["toy"], r["model"]), []).append(r)
    rows, means = [], {}
    for (toy, model), runs in groups.items():
        ratios = [r["flowgen"]["step_s"] / r["zuko"]["step_s"] for r in runs]
        for k in (k for k in steps if all(k in r["flowgen"]["gaps"] for r in runs)):
            ours = [r["flowgen"]["gaps"][k] for r in runs]
            theirs = [r["zuko"]["gaps"][k] for r in runs]
            means[toy, model, k] = statistics.mean(ours)
            rows.append([toy, f"{runs[0]['entropy']:.4f}", model, str(k), _mean_std(ours),
                         _mean_std(theirs), _mean_std(ratios, 2), str(len(runs))])
    checks = []
    for toy, model, k, limit in THRESHOLDS:
        if (toy, model, k) in means:
            gap = means[toy, model, k]
            checks.append([f"{toy} {model} gap at {k} <= {limit}", f"{gap:.3f}",
                           "PASS" if gap <= limit else "FAIL"])
    for k in steps:
        if ("checkerboard", "nsf_c", k) in means and ("checkerboard", "affine_c", k) in means:
            rq, affine = means["checkerboard", "nsf_c", k], means["checkerboard", "affine_c", k]
            checks.append([f"checkerboard nsf_c better than affine_c at {k}",
                           f"{rq:.3f} vs {affine:.3f}", "PASS" if rq < affine else "FAIL"])
    for (toy, model), runs in groups.items():
        ratio = statistics.mean(r["flowgen"]["step_s"] / r["zuko"]["step_s"] for r in runs)
        checks.append([f"{toy} {model} step time <= {MAX_TIME_RATIO}x zuko's", f"{ratio:.2f}x",
                       "PASS" if ratio <= MAX_TIME_RATIO else "FAIL"])
    return rows, checks


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


HEADER = ["toy", "entropy (nats)", "model", "steps", "flowgen gap", "zuko gap",
          "flowgen/zuko step time", "seeds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toys", default=",".join(TOYS))
    parser.add_argument("--models", help=f"of {','.join(MODELS)} (default: see above)")
    parser.add_argument("--steps", default="500,1000,2000", help="evaluate after these steps")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--block", type=int, default=25, help="steps per alternating block")
    parser.add_argument("--tail-bound", type=float, default=5.0, help="the splines' bound B")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument("--results", help="JSON lines of finished runs: appended, reused")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: tabulate the runs already in --results, at those "
                             "of --steps each was evaluated after")
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # before the workers import torch
    torch.set_num_threads(1)
    steps = sorted(int(s) for s in args.steps.split(","))
    options = dict(steps=steps, block=args.block, tail_bound=args.tail_bound)
    models = args.models.split(",") if args.models else [*MODELS[:3], "affine_c"]
    runs = [(toy, model, int(seed)) for toy in args.toys.split(",") for model in models
            for seed in args.seeds.split(",")
            if args.models or model != "affine_c" or toy == "checkerboard"]
    done = _done_runs(args.results, options, any_steps=args.table_only)
    jobs = [(*run, options, args.results) for run in runs if run not in done]
    if args.table_only:  # tabulate the finished runs alone (a run cut short, say)
        runs, jobs = [run for run in runs if run in done], []
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            fresh = list(pool.map(_job, jobs))
    else:
        fresh = [_job(job) for job in jobs]
    results = [done[run] for run in runs if run in done] + fresh
    rows, checks = summarise(results, steps)
    text = (f"Gap: test NLL minus the data's entropy (nats, 20,000 test points), mean ± std over "
            f"seeds {args.seeds}; batch 512, Adam 1e-3, one thread, spline bound "
            f"{args.tail_bound:g}; step time: flowgen's over zuko's, side by side "
            f"(blocks of {args.block} steps).\n\n{markdown(HEADER, rows)}\n\n"
            f"{markdown(['acceptance', 'flowgen', 'result'], checks)}\n")
    print(text + f"\n({time.perf_counter() - start:.0f} s)")
    if args.markdown:
        with open(args.markdown, "w") as f:
            command = (f"--results {args.results} --table-only" if args.table_only else
                       f"--toys {args.toys} --models {','.join(models)} --steps {args.steps} "
                       f"--seeds {args.seeds}")
            f.write(f"# bench/toys.py\n\n    python bench/toys.py {command}\n\n{text}")


if __name__ == "__main__":
    main()
