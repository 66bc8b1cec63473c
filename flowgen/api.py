"""flowgen from Python: load a trained model, sample, turn samples into pictures.

    import flowgen
    model = flowgen.load_model("checkpoints/<run>/last.ckpt")
    images = flowgen.to_images(model.sample(16, temperature=0.7), model.n_bits)
    model.save_pretrained("my-glow"); same = flowgen.from_pretrained("my-glow")
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from flowgen.diagnostics import display_pixels
from flowgen.models import FlowModel
from flowgen.models import load_model as _load_checkpoint
from flowgen.models.pretrained import from_pretrained, save_pretrained

__all__ = ["from_pretrained", "load_model", "save_pretrained", "to_images"]


def load_model(path: str | Path, map_location: str | torch.device = "cpu",
               ema: bool | None = None) -> FlowModel:
    """The model of a ``train.py`` checkpoint (read with ``weights_only=True``) in eval mode,
    with ``n_bits`` (its images' bit depth; ``None`` for vectors) set. ``ema``: see
    :func:`flowgen.models.load_model`."""
    model, meta = _load_checkpoint(path, map_location=map_location, ema=ema)
    model.n_bits = meta.get("n_bits")
    return model


def to_images(samples: Tensor, n_bits: int = 8) -> list[Image.Image]:
    """Model-space images ``[N, C, H, W]`` -> ``N`` PIL images. A sample with a non-finite
    value becomes a red tile and a warning says how many: never a plausible dark image."""
    if samples.dim() != 4 or samples.shape[1] not in (1, 3):
        raise ValueError(f"to_images takes image samples [N, 1 or 3, H, W], got "
                         f"{tuple(samples.shape)}")
    pixels, health = display_pixels(samples.detach().float().cpu(), n_bits)
    if health.nonfinite:
        warnings.warn(f"{health.nonfinite} of {health.n_samples} samples are non-finite (drawn "
                      f"red): lower the temperature", RuntimeWarning, stacklevel=2)
    array = (pixels * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in array]
