"""Glow with RQ-spline couplings against the affine default on CIFAR-10 (issue 14, acceptance 4).

Trains the same reduced Glow twice through ``train.py`` (the real app and configs), once per
coupling, on ``../shared/datasets/cifar10-10k.npz``: same seed, batch, optimiser and steps,
validation every ``--every`` steps on the first ``--val-batches`` batches of the test split with
fixed dequantisation noise (``val_noise_seed=0``), so the curves are comparable step by step.
Then ``sample.py`` draws 64 images per temperature from each run's ``last.ckpt`` and its
non-finite counts are kept. Writes the curves, timings and sample counts as JSON and Markdown,
draws both validation curves into one PNG and puts the T=0.7 sample grids side by side in a
second (``<png>-samples.png``), with PIL (matplotlib is not a dependency).

    OMP_NUM_THREADS=1 .venv/bin/python bench/spline_images.py            # ~2 x 300 steps
    .venv/bin/python bench/spline_images.py --couplings spline            # one coupling only
    .venv/bin/python bench/spline_images.py --plot-only                   # redraw from the JSON

Each run gets a fresh ``run_name`` (``spline-images-<coupling>-<time>``); the JSON keeps every
coupling's latest run, so the couplings may be run one at a time. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
DATASET = "../shared/datasets/cifar10-10k.npz"  # relative to the project root, as train.py takes it
COLOURS = {"affine": (31, 119, 180), "spline": (214, 39, 40), "additive": (44, 160, 44)}


def overrides(args, coupling: str, run_name: str) -> list[str]:
    return ["data=npz", f"data.path={args.dataset}", f"data.batch_size={args.batch_size}",
            f"model.levels={args.levels}", f"model.steps={args.flow_steps}",
            f"model.hidden_channels={args.hidden}", f"model.coupling={coupling}",
            f"trainer.max_steps={args.steps}", f"trainer.val_check_interval={args.every}",
            f"trainer.limit_val_batches={args.val_batches}", "val_noise_seed=0",
            f"seed={args.seed}", "logger=csv", f"progress_every_n_steps={args.every}",
            f"run_name={run_name}"]


def train(args, coupling: str) -> dict:
    run_name = f"spline-images-{coupling}-{int(time.time())}"
    cmd = [sys.executable, "train.py", *overrides(args, coupling, run_name)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "WANDB_MODE": "offline"}
    print(f"$ OMP_NUM_THREADS={args.threads} {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log = out.stdout + out.stderr
    (ROOT / "outputs" / run_name).mkdir(parents=True, exist_ok=True)
    (ROOT / "outputs" / run_name / "bench-console.log").write_text(log)
    if out.returncode:
        raise SystemExit(f"{coupling}: train.py failed ({out.returncode}):\n{log[-3000:]}")
    params = re.search(r"with ([\d.]+M) parameters", log)
    speeds = [float(s) for s in re.findall(r"step \d+/\d+, ([\d.]+) steps/s", log)]
    curve = val_curve(ROOT / "outputs" / run_name / "csv" / "metrics.csv")
    print(f"  {coupling}: val bpd {curve}  ({wall:.0f} s)", flush=True)
    return {"run_name": run_name, "command": "python train.py " + " ".join(cmd[2:]),
            "params": params.group(1) if params else None, "wall_s": round(wall, 1),
            "steps_per_s": speeds[-1] if speeds else None, "val_bpd": curve,
            "samples": sample(args, run_name)}


def val_curve(path: Path) -> dict[str, float]:
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/bpd")]
    # Lightning logs a validation after n training steps at row step n - 1
    return {str(int(r["step"]) + 1): round(float(r["val/bpd"]), 4) for r in rows}


def sample(args, run_name: str) -> dict[str, str]:
    out_dir = f"outputs/{run_name}/final-grid"
    cmd = [sys.executable, "sample.py", f"ckpt=checkpoints/{run_name}/last.ckpt",
           "temperature=[0.5,0.7,1.0]", f"out={out_dir}", "progress=false"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"sample.py failed:\n{(out.stdout + out.stderr)[-3000:]}")
    lines = [ln for ln in out.stdout.splitlines() if "non-finite" in ln]
    print("  " + "\n  ".join(lines), flush=True)
    return {ln.split(":")[0]: ln.split(":", 1)[1].strip() for ln in lines}


def font(size: int):
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            pass
    return ImageFont.load_default()


def plot(results: dict, path: Path, title: str) -> None:
    """Validation bits/dim against step, one line per coupling, drawn with PIL."""
    w, h, left, right, top, bottom = 760, 460, 78, 24, 48, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    f, small = font(15), font(13)
    points = {c: sorted((int(s), v) for s, v in r["val_bpd"].items())
              for c, r in results.items()}
    xs = [s for p in points.values() for s, _ in p]
    ys = [v for p in points.values() for _, v in p]
    x0, x1 = 0, max(xs)
    y0 = math.floor(min(ys) * 10) / 10
    y1 = math.ceil(max(ys) * 10) / 10
    if y1 - y0 < 0.2:
        y1 = y0 + 0.2

    def px(s, v):
        return (left + (s - x0) / (x1 - x0) * (w - left - right),
                top + (y1 - v) / (y1 - y0) * (h - top - bottom))

    step_y = 0.1 if y1 - y0 <= 1.0 else 0.2 if y1 - y0 <= 2 else 0.5
    v = y0
    while v <= y1 + 1e-9:
        _, yy = px(x0, v)
        d.line([left, yy, w - right, yy], fill=(225, 225, 225))
        d.text((left - 8, yy), f"{v:.1f}", fill="black", font=small, anchor="rm")
        v += step_y
    step_x = 50 if x1 <= 500 else 500
    for s in range(0, x1 + 1, step_x):
        xx, _ = px(s, y0)
        d.line([xx, h - bottom, xx, h - bottom + 5], fill="black")
        d.text((xx, h - bottom + 8), str(s), fill="black", font=small, anchor="mt")
    d.rectangle([left, top, w - right, h - bottom], outline="black")
    d.text((w / 2, h - 20), "training step", fill="black", font=f, anchor="mm")
    d.text((w / 2, 22), title, fill="black", font=f, anchor="mm")
    for i, (c, p) in enumerate(points.items()):
        colour = COLOURS.get(c, (0, 0, 0))
        xy = [px(s, v) for s, v in p]
        d.line(xy, fill=colour, width=3)
        for x, y in xy:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        ly = top + 16 + 22 * i
        d.line([w - right - 190, ly, w - right - 160, ly], fill=colour, width=3)
        last = p[-1]
        d.text((w - right - 152, ly), f"{c}: {last[1]:.3f} at {last[0]}", fill="black",
               font=small, anchor="lm")
    # the y label, reading bottom to top
    label = Image.new("RGB", (140, 22), "white")
    ImageDraw.Draw(label).text((70, 11), "val bits/dim", fill="black", font=f, anchor="mm")
    img.paste(label.rotate(90, expand=True), (6, int((top + h - bottom) / 2 - 70)))
    img.save(path)


def samples_picture(results: dict, path: Path, temperature: str = "0.70") -> None:
    """The T=0.7 grids of ``sample.py`` (64 images of each run's last.ckpt), side by side."""
    grids = {c: ROOT / "outputs" / r["run_name"] / "final-grid" / f"grid-T{temperature}.png"
             for c, r in results.items()}
    grids = {c: Image.open(g).convert("RGB") for c, g in grids.items() if g.is_file()}
    if not grids:
        return
    f, pad, head = font(15), 12, 30
    w = sum(g.width for g in grids.values()) + pad * (len(grids) + 1)
    h = max(g.height for g in grids.values()) + head + pad
    img = Image.new("RGB", (w, h), "white")
    d, x = ImageDraw.Draw(img), pad
    for c, g in grids.items():
        img.paste(g, (x, head))
        d.text((x + g.width / 2, head / 2), f"{c}, T={float(temperature):.1f}", fill="black",
               font=f, anchor="mm")
        x += g.width + pad
    img.save(path)


def markdown(results: dict, args) -> str:
    steps = sorted({int(s) for r in results.values() for s in r["val_bpd"]})
    lines = [f"# Glow, affine vs RQ-spline coupling, {args.steps} steps on CIFAR-10 (cifar10-10k)",
             "", f"`OMP_NUM_THREADS={args.threads} .venv/bin/python bench/spline_images.py` "
                 f"(L={args.levels}, K={args.flow_steps}, {args.hidden} channels, batch "
                 f"{args.batch_size}, Adam 1e-3 with 100 warm-up steps, seed {args.seed}; val "
                 f"bits/dim of the EMA weights on the first {args.val_batches} test batches, "
                 f"{args.val_batches * args.batch_size} images, fixed noise). Timings are "
                 f"wall clock of the whole `train.py` process (start-up and validations "
                 f"included) on a shared 2-core VM, so only indicative.", "",
             "| coupling | params | " + " | ".join(f"step {s}" for s in steps)
             + " | s/step (wall incl. validation) | steps/s (last progress line) |",
             "| --- | --- | " + " | ".join("---" for _ in steps) + " | --- | --- |"]
    for c, r in results.items():
        cells = [f"{r['val_bpd'].get(str(s), float('nan')):.4f}" for s in steps]
        lines.append(f"| {c} | {r['params']} | " + " | ".join(cells)
                     + f" | {r['wall_s'] / args.steps:.2f} | {r['steps_per_s']} |")
    lines += ["", "Samples of `last.ckpt` (`sample.py temperature=[0.5,0.7,1.0]`, 64 each):", ""]
    for c, r in results.items():
        for k, v in r["samples"].items():
            lines.append(f"- {c} `{k}`: {v}")
    lines += ["", "Runs:", ""] + [f"- {c}: `{r['command']}`" for c, r in results.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--couplings", nargs="+", default=["affine", "spline"])
    p.add_argument("--dataset", default=DATASET)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--val-batches", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--flow-steps", type=int, default=4)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="bench/spline_images.json")
    p.add_argument("--markdown", default="bench/spline_images.md")
    p.add_argument("--png", default="docs/spline-cifar10-300.png")
    p.add_argument("--plot-only", action="store_true", help="redraw from --json, train nothing")
    args = p.parse_args()
    os.chdir(ROOT)  # the paths above, and train.py's, are relative to the project root
    store = Path(args.json)
    results = json.loads(store.read_text())["results"] if store.exists() else {}
    if not args.plot_only:
        if not Path(args.dataset).is_file():
            raise SystemExit(f"needs {args.dataset} (see ../shared/README.md)")
        for c in args.couplings:
            results[c] = train(args, c)
            store.write_text(json.dumps({"settings": vars(args), "results": results}, indent=1))
    results = {c: results[c] for c in ("affine", "additive", "spline") if c in results}
    plot(results, Path(args.png), f"Glow L={args.levels} K={args.flow_steps} "
         f"{args.hidden}ch on CIFAR-10 (cifar10-10k), batch {args.batch_size}: affine vs spline")
    samples_picture(results, Path(args.png).with_name(Path(args.png).stem + "-samples.png"))
    Path(args.markdown).write_text(markdown(results, args))
    print(Path(args.markdown).read_text())


if __name__ == "__main__":
    main()
