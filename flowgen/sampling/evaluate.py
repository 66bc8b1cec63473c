"""Bits per dimension of a checkpoint on a data config's validation split.

The dequantisation noise is drawn from ``seed`` the way Lightning's validation draws it from the
global RNG: every batch's ``preprocess(..., generator)`` takes its noise, batch after batch (the
validation loader has its own generator, so its iterator draws nothing). So ``seed=s batch_size=B``
gives the ``val/bpd`` that ``torch.manual_seed(s)`` then ``Trainer.validate`` logs for a model
trained with ``val_noise_seed: null`` and validation batches of ``B`` (on the CPU; on a GPU the
noise comes from a CUDA generator seeded alike, as the global CUDA RNG would be).

``noise_seed=k`` instead gives every image the fixed noise pattern of a run trained with
``val_noise_seed: k``: then the result equals that run's ``val/bpd`` for any batch size.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from flowgen.models import MultiScaleFlow


@torch.no_grad()
def evaluate_bpd(model: MultiScaleFlow, n_bits: int, val_set, batch_size: int = 64,
                 seed: int = 0, limit_batches: int | None = None,
                 progress: bool = True, noise_seed: int | None = None) -> tuple[float, int]:
    """``(mean bits/dim, images evaluated)`` over ``val_set`` (or its first ``limit_batches``
    batches). Labels are the ``cond`` of a class-conditional model."""
    from flowgen.training.module import FlowModule

    module = FlowModule(model, n_bits=n_bits, val_noise_seed=noise_seed).eval()
    device = next(model.parameters()).device
    noise_generator = torch.Generator(device).manual_seed(seed)
    # its own generator, as flowgen's validation loaders: iterating draws nothing from the noise
    loader = DataLoader(val_set, batch_size=batch_size, shuffle=False,
                        generator=torch.Generator())
    total = len(loader) if limit_batches is None else min(limit_batches, len(loader))
    batches = iter(loader)
    steps = range(total)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="bits/dim", unit="batch", dynamic_ncols=True)
    bpds = []
    for _ in steps:
        pixels, labels = next(batches)[:2]
        bpd = module._bpd_and_logits(pixels.to(device), torch.as_tensor(labels).to(device),
                                     noise_generator, fixed_noise=noise_seed is not None)[0]
        bpds.append(bpd.double().cpu())
        if progress:
            steps.set_postfix(bpd=f"{torch.cat(bpds).mean().item():.4f}")
    if not bpds:
        raise ValueError("the validation split is empty: nothing to evaluate")
    values = torch.cat(bpds)
    return values.mean().item(), values.numel()
