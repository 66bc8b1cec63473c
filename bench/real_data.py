"""Real-data check of the architectures (issue: seeds' architectures, acceptance 3 and 4).

Trains each setup on the CPU on ../shared/datasets for a fixed number of steps through the real
configs (``experiment=...`` plus overrides), and prints the test bits/dim at fixed steps on a
fixed test subset with fixed dequantisation noise, and whether any step produced NaN/Inf.

    .venv/bin/python bench/real_data.py                 # the three 300-step curves
    .venv/bin/python bench/real_data.py --full-depth    # + full Glow (K=32, L=3, 512) 50 steps

A benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from flowgen.config import CONFIG_DIR, PROJECT_ROOT
from flowgen.training import FlowModule
from flowgen.training.train import architecture_config

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
SETUPS = {  # name -> (experiment, dataset file, overrides that shrink it for 2 CPU cores)
    "glow_cifar10 (reduced width)": ("glow_cifar10", "cifar10-10k.npz",
                                     ["model.steps=8", "model.hidden_channels=128",
                                      "optim.warmup_steps=50"]),
    "realnvp_cifar10 (reduced depth)": ("realnvp_cifar10", "cifar10-10k.npz",
                                        ["model.res_blocks=2", "model.hidden_channels=32",
                                         "optim.warmup_steps=50"]),
    "nice_mnist": ("nice_mnist", "mnist.npz", ["data.image_size=28"]),
}


def build(experiment: str, dataset: str, overrides: list[str], batch_size: int):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", "data=npz",
                                          f"data.path={DATASETS / dataset}",
                                          f"data.batch_size={batch_size}", *overrides])
    dm = instantiate(cfg.data)
    dm.setup()
    model = instantiate(architecture_config(cfg.model), event_shape=dm.event_shape)
    module = FlowModule(model, optimizer=instantiate(cfg.optim.optimizer), n_bits=cfg.n_bits,
                        warmup_steps=cfg.optim.warmup_steps,
                        classifier_weight=cfg.get("classifier_weight", 0.0))
    return cfg, dm, module


@torch.no_grad()
def test_bpd(module: FlowModule, images: torch.Tensor, labels: torch.Tensor) -> float:
    module.eval()
    g = torch.Generator().manual_seed(0)  # the same noise at every evaluation
    bpd = torch.cat([module.bpd(images[i:i + 100], labels[i:i + 100], generator=g)
                     for i in range(0, len(images), 100)])
    module.train()
    return bpd.mean().item()


def run(name: str, experiment: str, dataset: str, overrides: list[str], steps: int,
        batch_size: int, eval_every: int, n_test: int) -> None:
    torch.manual_seed(0)
    cfg, dm, module = build(experiment, dataset, overrides, batch_size)
    test_images = torch.stack([dm.val_set[i][0] for i in range(n_test)])
    test_labels = torch.tensor([int(dm.val_set[i][1]) for i in range(n_test)])
    opt_cfg = module.configure_optimizers()
    opt = opt_cfg["optimizer"] if isinstance(opt_cfg, dict) else opt_cfg
    sched = opt_cfg["lr_scheduler"]["scheduler"] if isinstance(opt_cfg, dict) else None
    loader = iter(dm.train_dataloader())
    first = next(loader)
    with torch.no_grad():
        module.train()
        module.bpd(first[0], first[1])  # data-dependent initialisation on a real batch
    n_params = sum(p.numel() for p in module.parameters()) / 1e6
    print(f"\n{name}: experiment={experiment} {' '.join(overrides)}  ({n_params:.2f}M params, "
          f"batch {batch_size}, test subset {n_test})", flush=True)
    curve = {0: test_bpd(module, test_images, test_labels)}
    bad_steps, t0 = [], time.perf_counter()
    for step in range(1, steps + 1):
        try:
            pixels, labels = next(loader)
        except StopIteration:
            loader = iter(dm.train_dataloader())
            pixels, labels = next(loader)
        loss = module.bpd(pixels, labels).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(),
                                                   cfg.trainer.gradient_clip_val)
        if not (math.isfinite(loss.item()) and math.isfinite(grad_norm.item())):
            bad_steps.append(step)
        opt.step()
        if sched is not None:
            sched.step()
        if step % eval_every == 0:
            curve[step] = test_bpd(module, test_images, test_labels)
            print(f"  step {step:4d}  train bpd {loss.item():.3f}  test bpd {curve[step]:.3f}  "
                  f"({(time.perf_counter() - t0) / step:.2f} s/step)", flush=True)
    module.eval()
    samples = module.model.sample(16, temperature=0.7)
    print(f"  test bpd at steps {list(curve)}: {[round(v, 3) for v in curve.values()]}")
    print(f"  NaN/Inf steps: {bad_steps or 'none'};  samples at T=0.7 finite: "
          f"{bool(torch.isfinite(samples).all())}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--only", nargs="*", help="setup names (substring match)")
    parser.add_argument("--full-depth", action="store_true",
                        help="also: full glow_cifar10 (K=32, L=3, 512), 50 steps at batch 16")
    args = parser.parse_args()
    if not DATASETS.is_dir():
        raise SystemExit(f"needs {DATASETS} (see ../shared/README.md)")
    for name, (experiment, dataset, overrides) in SETUPS.items():
        if args.only and not any(o in name for o in args.only):
            continue
        run(name, experiment, dataset, overrides, args.steps, args.batch_size, args.eval_every,
            args.n_test)
    if args.full_depth:
        run("glow_cifar10 (full depth)", "glow_cifar10", "cifar10-10k.npz", [], 50, 16, 25,
            100)


if __name__ == "__main__":
    main()
