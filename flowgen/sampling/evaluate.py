"""Bits per dimension of a checkpoint on a data config's validation split.

The dequantisation noise is drawn from ``seed`` the way Lightning's validation draws it from the
global RNG: the loader's iterator first takes its base seed, then every batch's
``preprocess(..., generator)`` takes its noise, batch after batch. So ``seed=s batch_size=B``
gives the ``val/bpd`` that ``torch.manual_seed(s)`` then ``Trainer.validate`` logs for a model
trained with ``val_noise_seed: null`` and validation batches of ``B`` (on the CPU; on a GPU the
noise comes from a CUDA generator seeded alike, as the global CUDA RNG would be).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from flowgen.models import MultiScaleFlow


@torch.no_grad()
def evaluate_bpd(model: MultiScaleFlow, n_bits: int, val_set, batch_size: int = 64,
                 seed: int = 0, limit_batches: int | None = None,
                 progress: bool = True) -> tuple[float, int]:
    """``(mean bits/dim, images evaluated)`` over ``val_set`` (or its first ``limit_batches``
    batches). Labels are the ``cond`` of a class-conditional model."""
    from flowgen.training.module import FlowModule

    module = FlowModule(model, n_bits=n_bits).eval()
    device = next(model.parameters()).device
    loader_generator = torch.Generator().manual_seed(seed)
    noise_generator = (loader_generator if device.type == "cpu"
                       else torch.Generator(device).manual_seed(seed))
    loader = DataLoader(val_set, batch_size=batch_size, shuffle=False,
                        generator=loader_generator)
    total = len(loader) if limit_batches is None else min(limit_batches, len(loader))
    batches = iter(loader)  # takes the base seed from loader_generator, as Lightning's does
    steps = range(total)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="bits/dim", unit="batch", dynamic_ncols=True)
    bpds = []
    for _ in steps:
        pixels, labels = next(batches)[:2]
        bpd = module.bpd(pixels.to(device), torch.as_tensor(labels).to(device), noise_generator)
        bpds.append(bpd.double().cpu())
        if progress:
            steps.set_postfix(bpd=f"{torch.cat(bpds).mean().item():.4f}")
    if not bpds:
        raise ValueError("the validation split is empty: nothing to evaluate")
    values = torch.cat(bpds)
    return values.mean().item(), values.numel()
