"""Latent interpolations between two random latents or two encoded images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import save_image

from flowgen.data import preprocess
from flowgen.models import MultiScaleFlow
from flowgen.sampling.grid import decode_batched, draw_noise

#: ``sin(angle)`` below which two latents count as (anti)parallel and slerp falls back to linear.
PARALLEL_EPS = 1e-6


def interpolation_weights(a: Tensor, b: Tensor, t: Tensor, method: str) -> tuple[Tensor, Tensor]:
    """Weights ``(wa, wb)``, ``[steps, P]`` (float64), with ``frame = wa * a + wb * b`` for the
    ``P`` pairs ``a[p], b[p]`` (flattened per pair) and ``t`` in [0, 1] ``[steps]``.

    ``linear``: ``(1 - t, t)``. ``slerp``: ``(sin((1 - t) w) / sin w, sin(t w) / sin w)`` with
    ``w`` the angle between ``a[p]`` and ``b[p]``; linear where ``sin w`` is ~0 (parallel,
    antiparallel or a zero latent). Both give exactly ``a`` at ``t = 0`` and ``b`` at ``t = 1``.
    """
    t = t.to(torch.float64)[:, None]
    linear = (1 - t).expand(-1, a.shape[0]), t.expand(-1, a.shape[0])
    if method == "linear":
        return linear
    if method != "slerp":
        raise ValueError(f"method must be linear or slerp, got {method!r}")
    fa, fb = a.flatten(1).to(torch.float64), b.flatten(1).to(torch.float64)
    norms = fa.norm(dim=1) * fb.norm(dim=1)
    cos = ((fa * fb).sum(1) / norms.clamp_min(torch.finfo(torch.float64).tiny)).clamp(-1, 1)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    parallel = (sin < PARALLEL_EPS) | (norms == 0)
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, linear[0], torch.sin((1 - t) * omega) / safe)
    wb = torch.where(parallel, linear[1], torch.sin(t * omega) / safe)
    return wa, wb


def interpolate_latents(za: Sequence[Tensor], zb: Sequence[Tensor], steps: int,
                        method: str = "slerp") -> list[Tensor]:
    """Per level, ``steps`` frames from ``za`` to ``zb`` (each ``[1, *shape]``, one latent per
    level) -> ``[steps, *shape]`` per level; every level is interpolated on its own."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both endpoints are frames), got {steps}")
    t = torch.arange(steps, dtype=torch.float64) / (steps - 1)  # exactly 0 and 1 at the ends
    frames = []
    for a, b in zip(za, zb, strict=True):
        wa, wb = interpolation_weights(a, b, t, method)  # [steps, 1]
        shape = (steps,) + (1,) * (a.dim() - 1)
        frames.append((wa.reshape(shape) * a.double() + wb.reshape(shape) * b.double())
                      .to(a.dtype))
    return frames


def load_val_set(data_cfg):
    """The validation split (a dataset of ``(uint8 [C, H, W], label)``) of the ``data`` config."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        datamodule = instantiate(data_cfg)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ValueError(f"cannot load the data ({data_cfg.get('_target_')}): "
                         f"{str(cause).splitlines()[0]}") from err
    datamodule.prepare_data()
    datamodule.setup("validate")
    return datamodule.val_set


def check_data_shape(val_set, in_shape: Sequence[int]) -> None:
    """A clear error unless the data's images have the model's ``[C, H, W]``."""
    shape = tuple(torch.as_tensor(val_set[0][0]).shape)
    if shape != tuple(in_shape):
        raise ValueError(f"the data's images are {list(shape)} but the model was "
                         f"trained on {list(in_shape)}: pass the data config it was trained with")


def load_val_images(data_cfg, indices: Sequence[int], in_shape: Sequence[int],
                    val_set=None) -> Tensor:
    """uint8 ``[len(indices), C, H, W]`` from the validation split of the ``data`` config (or
    from ``val_set``, that split already loaded)."""
    val = load_val_set(data_cfg) if val_set is None else val_set
    size = len(val)
    bad = [i for i in indices if not 0 <= i < size]
    if bad:
        raise ValueError(f"indices {list(indices)} out of range: the validation split has {size} "
                         f"images (indices 0..{size - 1})")
    check_data_shape(val, in_shape)
    return torch.stack([torch.as_tensor(val[i][0]) for i in indices])


def endpoint_latents(model: MultiScaleFlow, endpoints: str, *, temperature: float = 1.0,
                     seed: int = 0, pixels: Tensor | None = None,
                     n_bits: int = 8) -> tuple[list[Tensor], list[Tensor]]:
    """The two endpoints, one ``[1, *shape]`` latent per level each: random latents at
    ``temperature`` from ``seed``, or the encodings of ``pixels`` (uint8 ``[2, C, H, W]``)."""
    if endpoints == "random":
        zs = [temperature * z for z in draw_noise(model, 2, seed)]
    elif endpoints == "data":
        p = next(model.parameters())
        x = preprocess(pixels, n_bits, noise=False).to(p.device, p.dtype)
        with torch.no_grad():
            zs = [z.cpu() for z in model.encode(x)]
    else:
        raise ValueError(f"endpoints must be random or data, got {endpoints!r}")
    return [z[:1] for z in zs], [z[1:2] for z in zs]


def interpolation_frames(model: MultiScaleFlow, za: Sequence[Tensor], zb: Sequence[Tensor],
                         steps: int, method: str = "slerp", batch_size: int = 64) -> Tensor:
    """Decoded frames ``[steps, C, H, W]`` in model space, first ``decode(za)``, last
    ``decode(zb)``."""
    return decode_batched(model, interpolate_latents(za, zb, steps, method), batch_size)


def save_strip(frames: Tensor, path: Path) -> Path:
    """Frames in [0, 1] -> one PNG row (``make_grid``, padding 2)."""
    save_image(frames, path, nrow=frames.shape[0])
    return path


def gif_sequence(frames: Tensor) -> Tensor:
    """Forward then backward without repeating the ends: ``2 * steps - 2`` frames."""
    return torch.cat([frames, frames.flip(0)[1:-1]])


def save_gif(frames: Tensor, path: Path, frame_ms: int = 120, scale: int = 4) -> Path:
    """Frames in [0, 1] ``[steps, C, H, W]`` -> a GIF looping forever over
    :func:`gif_sequence` (Pillow merges consecutive identical frames)."""
    seq = gif_sequence(frames)
    if scale > 1:
        seq = seq.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    arrays = (seq * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    mode = "L" if arrays.shape[-1] == 1 else "RGB"
    images = [Image.fromarray(a[..., 0] if mode == "L" else a) for a in arrays]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=frame_ms, loop=0)
    return path

