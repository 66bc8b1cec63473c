"""A checkpoint's objective (bits per dimension for images) on a data config's validation split,
computed by the objective training uses (:mod:`flowgen.objectives`), without a trainer.

The dequantisation noise is drawn from ``seed`` the way Lightning's validation draws it from the
global RNG: every batch takes its noise from one generator, batch after batch (the validation
loader has its own generator, so its iterator draws nothing). So ``seed=s batch_size=B`` gives the
``val/bpd`` that ``torch.manual_seed(s)`` then ``Trainer.validate`` logs for a model trained with
``val_noise_seed: null`` and validation batches of ``B`` (on the CPU; on a GPU the noise comes
from a CUDA generator seeded alike, as the global CUDA RNG would be).

``noise_seed=k`` instead gives every image the fixed noise pattern of a run trained with
``val_noise_seed: k``: then the result equals that run's ``val/bpd`` for any batch size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from flowgen.objectives import ImageDensity, Objective, UniformDequantizer


@torch.no_grad()
def evaluate(model: nn.Module, objective: Objective, val_set, batch_size: int = 64,
             seed: int = 0, limit_batches: int | None = None, progress: bool = True,
             noise_seed: int | None = None) -> tuple[float, int]:
    """``(mean of the objective's metric, samples evaluated)`` over ``val_set`` (or its first
    ``limit_batches`` batches), the model in eval mode. Labels are the ``cond`` of a
    class-conditional model."""
    model.eval()
    objective.eval()
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

        steps = tqdm(steps, desc=objective.metric, unit="batch", dynamic_ncols=True)
    values = []
    for _ in steps:
        data, labels = next(batches)[:2]
        batch = (data.to(device), torch.as_tensor(labels).to(device))
        result = objective(model, batch, generator=noise_generator, noise_seed=noise_seed)
        values.append(result.values.double().cpu())
        if progress:
            steps.set_postfix({objective.metric: f"{torch.cat(values).mean().item():.4f}"})
    if not values:
        raise ValueError("the validation split is empty: nothing to evaluate")
    every = torch.cat(values)
    return every.mean().item(), every.numel()


def evaluate_bpd(model: nn.Module, n_bits: int, val_set, batch_size: int = 64,
                 seed: int = 0, limit_batches: int | None = None,
                 progress: bool = True, noise_seed: int | None = None) -> tuple[float, int]:
    """``(mean bits/dim, images evaluated)``: :func:`evaluate` with the image objective at
    ``n_bits`` (uniform dequantisation)."""
    objective = ImageDensity(n_bits, UniformDequantizer()).to(next(model.parameters()).device)
    return evaluate(model, objective, val_set, batch_size, seed, limit_batches, progress,
                    noise_seed)
