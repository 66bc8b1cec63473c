"""Temperature sampling in chunks, and image grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import save_image

from flowgen.models import MultiScaleFlow
from flowgen.models.multiscale import check_sampling_args


def draw_noise(model: MultiScaleFlow, n: int, seed: int) -> list[Tensor]:
    """Unit-normal latents ``[n, *shape]`` per level, drawn on the CPU from ``seed``: the same
    seed gives the same latents whatever the device and the decoding batch size (temperature
    ``T`` scales them, as :meth:`MultiScaleFlow.sample_latents` does)."""
    generator = torch.Generator().manual_seed(seed)
    return model.prior_noise(n, generator, device="cpu", dtype=torch.float32)


@torch.no_grad()
def decode_batched(model: MultiScaleFlow, zs: Sequence[Tensor], batch_size: int,
                   label: int | None = None) -> Tensor:
    """Decode latents (any batch length) ``batch_size`` at a time on the model's device; the
    images come back on the CPU, in model space. ``label``: class of a class-conditional model."""
    p = next(model.parameters())
    n = zs[0].shape[0]
    out = []
    for i in range(0, n, batch_size):
        chunk = [z[i:i + batch_size].to(p.device, p.dtype) for z in zs]
        cond = None if label is None else torch.full((chunk[0].shape[0],), label,
                                                     dtype=torch.long, device=p.device)
        out.append(model.decode(chunk, cond).float().cpu())
    return torch.cat(out)


def check_label(model: MultiScaleFlow, label: int | None) -> None:
    """A clear error unless ``label`` is None or a class the model was trained with."""
    if label is None:
        return
    classes = getattr(model, "num_classes", 0)
    if not classes:
        raise ValueError(f"label={label} given, but this checkpoint is unconditional: drop label")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < classes:
        raise ValueError(f"label must be an integer in 0..{classes - 1}, got {label!r}")


def sample_images(model: MultiScaleFlow, n: int, temperature: float, seed: int = 0,
                  batch_size: int = 64, label: int | None = None) -> Tensor:
    """``n`` samples at ``temperature`` (of class ``label`` for a class-conditional model),
    ``[n, C, H, W]`` in model space (about [-0.5, 0.5])."""
    check_sampling_args(n, temperature)
    check_label(model, label)
    return decode_batched(model, [temperature * z for z in draw_noise(model, n, seed)],
                          batch_size, label)


def finite(images: Tensor) -> tuple[Tensor, int]:
    """Images with non-finite values (a flow pushed too far) set to 0, and how many had some."""
    bad = ~torch.isfinite(images).flatten(1).all(1)
    return torch.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0), int(bad.sum())


def save_grid(images: Tensor, path: Path, nrow: int) -> Path:
    """Images in [0, 1] ``[n, C, H, W]`` -> one PNG grid (``make_grid``, padding 2)."""
    save_image(images, path, nrow=nrow)
    return path
