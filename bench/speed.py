"""Speed and memory of flowgen's Glow against the most used PyTorch Glow (issue 5).

    .venv/bin/python bench/speed.py                 # configs A-D, every path (~10 min, 2 cores)
    .venv/bin/python bench/speed.py --configs A --paths eager fast
    .venv/bin/python bench/speed.py --device cuda     # GPU: adds bf16 and compiled paths
    .venv/bin/python bench/speed.py --markdown bench/results.md

Every (config, path) runs in its own process, so peak memory is that path's alone. A training step
is what ``FlowModule`` does: dequantise uint8 images, bits/dim, backward, Adam step. Figures per
path: seconds per step after warm-up (median, min, max), images/s, peak memory (RSS on CPU,
``torch.cuda.max_memory_allocated`` on GPU), sampling time for one batch at T=0.7, FLOPs per image
of a training step (``FlopCounterMode``), achieved GFLOP/s and its fraction of a large 3x3
convolution's GFLOP/s measured in the same run. Every optimised path is printed with its speed
ratio to flowgen's plain eager float32 path of the same config, measured in the same run.

A benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: The reference Glow's figures on this machine kind (2 cores, float32): img/s, peak RSS GB,
#: sampling seconds for one batch at T=0.7 (issue 5).
CONFIGS = {
    "A": dict(in_channels=3, steps=8, hidden=512, batch=16, ref=(16.3, 0.92, 0.29)),
    "B": dict(in_channels=3, steps=8, hidden=128, batch=16, ref=(63.0, 0.48, 0.072)),
    "C": dict(in_channels=3, steps=32, hidden=512, batch=4, ref=(2.6, 1.43, 0.47)),
    "D": dict(in_channels=1, steps=8, hidden=512, batch=16, ref=(17.9, 0.85, 0.25)),
    # C at a quarter of the depth (no reference figure): with C, shows memory against depth.
    "C8": dict(in_channels=3, steps=8, hidden=512, batch=4, ref=None),
}
#: path -> what it changes relative to ``eager`` (flowgen with its speed options off: NCHW
#: float32, every activation stored for backward, plain Adam, the process's default allocator).
PATHS = {
    "eager": {},
    # what train.py does by default: NHWC inputs (channels_last) and glibc keeping freed memory
    "fast": dict(channels_last=True, keep_memory=True),
    # ablations of "fast": each leaves one of its changes out, or adds fused Adam
    "fast-no-keep-memory": dict(channels_last=True),
    "fast-nchw": dict(keep_memory=True),
    "fast-fused-adam": dict(channels_last=True, keep_memory=True, fused_adam=True),
    "invertible": dict(channels_last=True, keep_memory=True, memory="invertible"),
    "checkpoint": dict(channels_last=True, keep_memory=True, memory="checkpoint"),
    "compile": dict(channels_last=True, keep_memory=True, compile=True),
    "bf16": dict(channels_last=True, keep_memory=True, bf16=True),
    "bf16-compile": dict(channels_last=True, keep_memory=True, bf16=True, compile=True),
}
#: Paths per config (memory modes where depth matters, bf16 where speed is compared).
ONLY = {"invertible": ("A", "C", "C8"), "checkpoint": ("A", "C"), "bf16": ("A", "B"),
        "eager": ("A", "B", "C", "D"), "fast": ("A", "B", "C", "D", "C8")}
CPU_PATHS = ["eager", "fast", "invertible", "checkpoint", "bf16"]
GPU_PATHS = ["eager", "fast", "invertible", "checkpoint", "compile", "bf16", "bf16-compile"]


def rss_gb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in GB (Linux)."""
    import resource

    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def worker(config: str, path: str, device: str, steps: int, warmup: int, threads: int) -> dict:
    """One (config, path) measurement, in a fresh process."""
    opts = PATHS[path]
    if opts.get("keep_memory"):
        from flowgen.perf import keep_freed_memory

        keep_freed_memory()
    import torch

    torch.set_num_threads(threads)
    baseline_rss = rss_gb()[0]
    from torch.utils.flop_counter import FlopCounterMode

    from flowgen.flows import set_memory
    from flowgen.models import Glow
    from flowgen.objectives import bits_per_dim, preprocess  # the objective's own math

    c = CONFIGS[config]
    torch.manual_seed(0)
    model = Glow((c["in_channels"], 32, 32), levels=3, steps=c["steps"],
                 hidden_channels=c["hidden"]).to(device)
    set_memory(model, opts.get("memory", "store"))
    # As FlowModule(channels_last=True): NHWC inputs, convolutions follow them.
    fmt = torch.channels_last if opts.get("channels_last") else torch.contiguous_format
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4,
                                 **({"fused": True} if opts.get("fused_adam") else {}))
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 256, (c["batch"], c["in_channels"], 32, 32), generator=gen,
                             dtype=torch.uint8).to(device) for _ in range(2)]
    forward = torch.compile(model.log_prob) if opts.get("compile") else model.log_prob
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bool(opts.get("bf16")))

    def loss_of(pixels):
        x = preprocess(pixels, 8).contiguous(memory_format=fmt)
        with autocast:
            log_p = forward(x)
        return bits_per_dim(log_p, model.num_dims, 8).mean()

    def step(pixels):
        loss = loss_of(pixels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    model.train()
    step(batches[0])  # ActNorm's data-dependent initialisation, then warm-up
    for i in range(warmup):
        step(batches[i % 2])
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps):
        t = time.perf_counter()
        step(batches[i % 2])
        sync()
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else rss_gb()[1])
    # Model FLOPs of one training step's forward and backward (the optimiser's are negligible),
    # counted with every activation stored: the memory modes' recomputation is extra work that
    # GFLOP/s does not credit (and FlopCounterMode cannot trace autograd.grad inside backward).
    memory = [level.memory for level in model.levels]
    for level in model.levels:
        level.memory = "store"
    with FlopCounterMode(display=False) as counter:
        loss_of(batches[0]).backward()
    for level, mode in zip(model.levels, memory, strict=True):
        level.memory = mode
    flops = counter.get_total_flops() / c["batch"]
    optimizer.zero_grad(set_to_none=True)

    model.eval()
    sample_times = []
    with torch.no_grad():
        for _ in range(4):
            t = time.perf_counter()
            with autocast:
                model.sample(c["batch"], temperature=0.7)
            sync()
            sample_times.append(time.perf_counter() - t)
    static = sum(p.numel() * p.element_size() for p in model.parameters()) * 4  # p, grad, 2 moments
    med = statistics.median(times)
    return dict(config=config, path=path, median=med, min=min(times), max=max(times),
                img_s=c["batch"] / med, peak_gb=peak, baseline_gb=baseline_rss,
                static_gb=static / 1e9, flops_per_img=flops,
                gflops_s=flops * c["batch"] / med / 1e9,
                sample_first=sample_times[0], sample=statistics.median(sample_times[1:]),
                params=sum(p.numel() for p in model.parameters()))


def conv_ceiling(device: str, threads: int) -> float:
    """GFLOP/s of a large 3x3 convolution (256 -> 256 channels, 16 x 32 x 32, channels_last):
    what these cores reach on the op a Glow spends its time in."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    x = torch.randn(16, 256, 32, 32, device=device).to(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, device=device).to(memory_format=torch.channels_last)
    flops = 2 * 16 * 256 * 256 * 9 * 32 * 32
    best = float("inf")
    with torch.no_grad():
        for _ in range(12):
            t = time.perf_counter()
            F.conv2d(x, w, padding=1)
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def run_worker(args, config: str, path: str) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", config, path, "--device", args.device,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads",
           str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        print(f"  {config}/{path} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict], ceiling: float, device: str) -> str:
    mem = "peak RSS GB" if device == "cpu" else "peak alloc GB"
    rows = [f"| config | path | s/step median (min-max) | img/s | vs eager | vs reference | "
            f"GFLOP/img | GFLOP/s | of 3x3 ceiling | {mem} | vs reference | of which activations "
            f"etc. | sample s (T=0.7) | speed-up vs reference |",
            "| --- " * 14 + "|"]
    eager = {r["config"]: r for r in results if r["path"] == "eager"}
    for r in results:
        ref = CONFIGS[r["config"]]["ref"]
        ref_img_s, ref_mem, ref_sample = ref or (None, None, None)
        base = eager.get(r["config"])
        vs_eager = f"{base['median'] / r['median']:.2f}x" if base else "-"
        rows.append(
            f"| {r['config']} | {r['path']} | {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}) "
            f"| {r['img_s']:.1f} | {vs_eager} | {_ratio(r['img_s'], ref_img_s)} | "
            f"{r['flops_per_img'] / 1e9:.2f} | {r['gflops_s']:.0f} | "
            f"{100 * r['gflops_s'] / ceiling:.0f}% | {r['peak_gb']:.2f} | "
            f"{_ratio(r['peak_gb'], ref_mem)} | {_activations(r):.2f} | {r['sample']:.3f} | "
            f"{_ratio(ref_sample, r['sample'])} |")
    return "\n".join(rows)


def _activations(r: dict) -> float:
    """Peak memory above the import and the weights, gradients and Adam moments (GB)."""
    return r["peak_gb"] - r["baseline_gb"] - r["static_gb"]


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--paths", nargs="+", choices=list(PATHS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.device, args.steps, args.warmup,
                                args.threads)))
        return
    paths = args.paths or (CPU_PATHS if args.device == "cpu" else GPU_PATHS)
    import torch

    device_name = (torch.cuda.get_device_name() if args.device == "cuda"
                   else f"CPU, {args.threads} threads")
    ceiling = conv_ceiling(args.device, args.threads)
    print(f"device: {device_name}; 3x3 conv ceiling {ceiling:.0f} GFLOP/s", flush=True)
    results = []
    for config in args.configs:
        for path in paths:
            if config not in ONLY.get(path, CONFIGS):
                continue
            t = time.time()
            r = run_worker(args, config, path)
            if r:
                results.append(r)
                print(f"  {config}/{path}: {r['img_s']:.1f} img/s, {r['gflops_s']:.0f} GFLOP/s, "
                      f"peak {r['peak_gb']:.2f} GB (import {r['baseline_gb']:.2f} GB, weights+"
                      f"grads+Adam {r['static_gb']:.2f} GB, rest {_activations(r):.2f} GB), "
                      f"sample {r['sample']:.3f} s (first "
                      f"{r['sample_first']:.3f} s)  [{time.time() - t:.0f} s]", flush=True)
    ceiling_after = conv_ceiling(args.device, args.threads)
    text = (f"Device: {device_name}. 3x3 convolution ceiling: {ceiling:.0f} GFLOP/s before, "
            f"{ceiling_after:.0f} after (the % column uses the larger).\n\n"
            + table(results, max(ceiling, ceiling_after), args.device) + "\n")
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
