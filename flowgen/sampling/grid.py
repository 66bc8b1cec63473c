"""Temperature sampling in chunks, and image grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import save_image

from flowgen.models import FlowModel
from flowgen.models.flow_model import check_sampling_args


def draw_noise(model: FlowModel, n: int, seed: int) -> list[Tensor]:
    """Unit-normal latents ``[n, *shape]`` per level, drawn on the CPU from ``seed``: the same
    seed gives the same latents whatever the device and the decoding batch size (temperature
    ``T`` scales them, as :meth:`FlowModel.sample_latents` does)."""
    generator = torch.Generator().manual_seed(seed)
    return model.prior_noise(n, generator, device="cpu", dtype=torch.float32)


def batches(n: int, batch_size: int, progress: bool = False, desc: str = "decoding"):
    """Start indices ``0, batch_size, ...`` below ``n``, with a progress bar on stderr when
    ``progress`` and there is more than one batch."""
    starts = range(0, n, batch_size)
    if not progress or len(starts) <= 1:
        return starts
    from tqdm.auto import tqdm

    return tqdm(starts, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


@torch.no_grad()
def decode_batched(model: FlowModel, zs: Sequence[Tensor], batch_size: int,
                   label: int | None = None, progress: bool = False) -> Tensor:
    """Decode latents (any batch length) ``batch_size`` at a time on the model's device; the
    images come back on the CPU, in model space. ``label``: class of a class-conditional model;
    ``None`` decodes unconditionally."""
    p = next(model.parameters())
    n = zs[0].shape[0]
    out = []
    for i in batches(n, batch_size, progress):
        chunk = [z[i:i + batch_size].to(p.device, p.dtype) for z in zs]
        cond = None if label is None else torch.full((chunk[0].shape[0],), label,
                                                     dtype=torch.long, device=p.device)
        out.append(model.decode(chunk, cond).float().cpu())
    return torch.cat(out)


def check_label(model: FlowModel, label: int | None) -> None:
    """A clear error unless ``label`` is None or a class the model was trained with."""
    if label is None:
        return
    classes = getattr(model, "num_classes", 0)
    if not classes:
        raise ValueError(f"label={label} given, but this checkpoint is unconditional: drop label")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < classes:
        raise ValueError(f"label must be an integer in 0..{classes - 1}, got {label!r}")


def check_level_temperatures(model: FlowModel,
                             level_temperatures: Sequence[float] | None) -> None:
    """A clear error unless there is one factor (a finite number >= 0) per level, or none."""
    if level_temperatures is None:
        return
    levels = len(model.latent_shapes)
    if len(level_temperatures) != levels:
        raise ValueError(f"level_temperatures has {len(level_temperatures)} values but the "
                         f"checkpoint has {levels} levels: give one per level (finest first)")
    for t in level_temperatures:
        check_sampling_args(1, t)


def sample_images(model: FlowModel, n: int, temperature: float, seed: int = 0,
                  batch_size: int = 64, label: int | None = None,
                  level_temperatures: Sequence[float] | None = None,
                  progress: bool = False) -> Tensor:
    """``n`` samples at ``temperature`` (of class ``label`` for a class-conditional model),
    ``[n, C, H, W]`` in model space (about [-0.5, 0.5]). ``level_temperatures`` (one factor per
    level, finest level first) multiplies ``temperature`` level by level: level ``i``'s latent
    is drawn at ``temperature * level_temperatures[i]``."""
    check_sampling_args(n, temperature)
    check_label(model, label)
    check_level_temperatures(model, level_temperatures)
    factors = level_temperatures or [1.0] * len(model.latent_shapes)
    zs = [temperature * f * z for f, z in zip(factors, draw_noise(model, n, seed), strict=True)]
    return decode_batched(model, zs, batch_size, label, progress)


def save_grid(images: Tensor, path: Path, nrow: int) -> Path:
    """Images in [0, 1] ``[n, C, H, W]`` -> one PNG grid (``make_grid``, padding 2)."""
    save_image(images, path, nrow=nrow)
    return path
