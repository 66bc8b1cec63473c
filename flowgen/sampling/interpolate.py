"""Latent interpolations along a path through two or more endpoints (random latents or encoded
images), and rows of such paths (a grid of pairs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid, save_image

from flowgen.data import preprocess
from flowgen.latent_paths import (  # noqa: F401 - re-exported for sampling's users
    interpolate_latents,
    interpolate_path,
    interpolation_weights,
    path_length,
)
from flowgen.models import FlowModel
from flowgen.sampling.edit import encode_batched
from flowgen.sampling.grid import decode_batched, draw_noise


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


def random_endpoints(model: FlowModel, n: int, temperature: float = 1.0,
                     seed: int = 0) -> list[Tensor]:
    """``n`` random endpoints at ``temperature`` from ``seed``: ``[n, *shape]`` per level."""
    return [temperature * z for z in draw_noise(model, n, seed)]


def encoded_endpoints(model: FlowModel, pixels: Tensor, n_bits: int,
                      batch_size: int = 64) -> list[Tensor]:
    """The encodings of uint8 ``pixels`` ``[n, C, H, W]`` taken at their bins' centres (so an
    endpoint frame decodes back to its image): ``[n, *shape]`` per level."""
    return encode_batched(model, preprocess(pixels, n_bits, noise=False), batch_size)


def path_frames(model: FlowModel, zs: Sequence[Tensor], steps: int,
                method: str = "slerp", batch_size: int = 64) -> Tensor:
    """Decoded frames of the path through the endpoints ``zs`` (``[N, *shape]`` per level),
    ``[path_length(N, steps), C, H, W]`` in model space."""
    return decode_batched(model, interpolate_path(zs, steps, method), batch_size)


def interpolation_frames(model: FlowModel, za: Sequence[Tensor], zb: Sequence[Tensor],
                         steps: int, method: str = "slerp", batch_size: int = 64) -> Tensor:
    """Decoded frames ``[steps, C, H, W]`` in model space, first ``decode(za)``, last
    ``decode(zb)``."""
    return decode_batched(model, interpolate_latents(za, zb, steps, method), batch_size)


def grid_frames(rows: Tensor) -> Tensor:
    """Paths ``[R, T, C, H, W]`` -> ``T`` pictures of the ``R`` paths in a column (``make_grid``,
    padding 2), every row at the same frame: the frames of an animated grid."""
    pictures = torch.stack([make_grid(rows[:, t], nrow=1) for t in range(rows.shape[1])])
    return pictures[:, :1] if rows.shape[2] == 1 else pictures  # make_grid makes grey RGB


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

