"""Reconstructions and attribute edits in latent space (Kingma & Dhariwal 2018, section 6.2).

The attribute is a class label (MNIST, CIFAR-10...) or one of the named binary attributes a
dataset carries as ``attr_names`` and ``attr`` (``[N, A]`` in {0, 1}: torchvision's CelebA, read
from ``list_attr_celeba.txt``).

Images are encoded at the centre of their quantisation bins (``preprocess(..., noise=False)``),
so the same image always gives the same latents. Class-conditional models are encoded and
decoded unconditionally (``cond=None``): the edit direction then lives in the latent space of the
unconditional model, and an edit at strength 0 gives back the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from flowgen.data import preprocess
from flowgen.data.images import MODES, read_image
from flowgen.models import FlowModel
from flowgen.sampling.grid import batches, decode_batched


def load_image_files(paths: Sequence[Path], in_shape: Sequence[int]) -> Tensor:
    """uint8 ``[len(paths), C, H, W]`` from image files, read by the data's ``read_image`` (its
    rules for bit depths, alpha, palettes, EXIF rotation) as the model's channels (grey or RGB);
    each must already have the model's size (no silent resizing)."""
    c, h, w = in_shape
    if c not in MODES:
        raise ValueError(f"the model takes {c}-channel images: only 1 (grey) or 3 (RGB) can be "
                         f"read from image files")
    out = []
    for path in paths:
        im = read_image(path, c)
        if im.size != (w, h):
            raise ValueError(f"{path} is {im.width}x{im.height} but the model takes {w}x{h} "
                             f"images: resize or crop it to {w}x{h} first")
        array = np.asarray(im, dtype=np.uint8).reshape(h, w, c)
        out.append(torch.from_numpy(array.copy()).permute(2, 0, 1))
    return torch.stack(out)


@torch.no_grad()
def encode_batched(model: FlowModel, x: Tensor, batch_size: int,
                   progress: bool = False) -> list[Tensor]:
    """Model-space images ``[n, C, H, W]`` -> one latent ``[n, *shape]`` per level (on the CPU),
    encoded ``batch_size`` at a time on the model's device, unconditionally."""
    p = next(model.parameters())
    chunks = [[z.float().cpu() for z in model.encode(x[i:i + batch_size].to(p.device, p.dtype))]
              for i in batches(x.shape[0], batch_size, progress, "encoding")]
    return [torch.cat(level) for level in zip(*chunks, strict=True)]


def reconstruct(model: FlowModel, pixels: Tensor, n_bits: int,
                batch_size: int = 64) -> tuple[Tensor, Tensor]:
    """``(x, decode(encode(x)))``, both ``[n, C, H, W]`` in model space, for uint8 ``pixels``
    taken to their bins' centres."""
    x = preprocess(pixels, n_bits, noise=False)
    return x, decode_batched(model, encode_batched(model, x, batch_size), batch_size)


def attribute_names(val_set) -> list[str]:
    """The dataset's named attributes in column order (``[]``: class labels only). Empty names
    (a trailing space in the header line) are kept so that positions stay column numbers."""
    return [str(name) for name in getattr(val_set, "attr_names", None) or []]


def attribute_column(val_set, attribute: int | str) -> int | None:
    """The ``attr`` column of a named attribute, ``None`` for a class label; a clear error
    when the kind does not fit the data or the name is unknown."""
    names = attribute_names(val_set)
    valid = ", ".join(name for name in names if name)
    if isinstance(attribute, str):
        if not names:
            raise ValueError(f"attribute={attribute} is a name, but this data has class labels "
                             f"only (named attributes come with data=celeba): give a class "
                             f"label, e.g. attribute=3")
        if attribute not in names or not attribute:
            raise ValueError(f"unknown attribute {attribute!r}: this data's attributes are "
                             f"{valid}")
        return names.index(attribute)
    if names:
        raise ValueError(f"attribute={attribute} is a class label, but this data's images carry "
                         f"named attributes instead: give one of {valid}")
    return None


@torch.no_grad()
def attribute_direction(model: FlowModel, val_set, attribute: int | str, n_bits: int,
                        max_images: int = 1000, batch_size: int = 64,
                        progress: bool = False) -> tuple[list[Tensor], int, int]:
    """Per level, mean latent of the images with ``attribute`` (a class label: labelled so; a
    name: that ``attr`` column is 1) minus the mean latent of the others, over the first
    ``max_images`` images of ``val_set``; and how many were in each group. Each direction has
    its level's latent shape."""
    column = attribute_column(val_set, attribute)
    n = min(max_images, len(val_set))
    loader = DataLoader(Subset(val_set, range(n)), batch_size=batch_size, shuffle=False)
    sums: list[list[Tensor]] | None = None  # [with, without] per level, float64
    counts = [0, 0]
    start = 0  # the loader keeps the dataset's order: its batches are consecutive rows of attr
    for pixels, labels in (loader if not progress else _bar(loader, "direction")):
        zs = encode_batched(model, preprocess(pixels, n_bits, noise=False), batch_size)
        if column is None:
            has = torch.as_tensor(labels).reshape(-1) == attribute
        else:
            has = torch.as_tensor(val_set.attr[start:start + len(pixels), column]).bool()
        start += len(pixels)
        if sums is None:
            sums = [[z.new_zeros(z.shape[1:], dtype=torch.float64) for _ in range(2)] for z in zs]
        for level, z in zip(sums, zs, strict=True):
            level[0] += z[has].double().sum(0)
            level[1] += z[~has].double().sum(0)
        counts[0] += int(has.sum())
        counts[1] += int((~has).sum())
    if not counts[0] or not counts[1]:
        which = "has" if not counts[0] else "lacks"
        what = "label" if column is None else "attribute"
        raise ValueError(f"none of the first {n} validation images {which} {what} {attribute} "
                         f"(attribute={attribute}): pick a {what} the data uses, or raise "
                         f"max_images")
    direction = [(w / counts[0] - wo / counts[1]).float() for w, wo in sums]
    return direction, counts[0], counts[1]


def _bar(loader, desc: str):
    if len(loader) <= 1:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def edit_latents(zs: Sequence[Tensor], direction: Sequence[Tensor],
                 alphas: Sequence[float]) -> list[Tensor]:
    """``z + alpha * direction`` for every image and alpha, per level: ``[n * len(alphas),
    *shape]``, image-major (image 0 at every alpha, then image 1...)."""
    a = torch.tensor(list(alphas), dtype=torch.float32)
    out = []
    for z, d in zip(zs, direction, strict=True):
        edited = z[:, None] + a.reshape(1, -1, *([1] * d.dim())) * d[None, None]
        out.append(edited.reshape(-1, *z.shape[1:]))
    return out


def manipulate(model: FlowModel, pixels: Tensor, direction: Sequence[Tensor],
               alphas: Sequence[float], n_bits: int, batch_size: int = 64,
               progress: bool = False) -> Tensor:
    """Decoded edits ``[n * len(alphas), C, H, W]`` (model space, image-major) of uint8
    ``pixels``; at ``alpha = 0`` the reconstruction of the image."""
    zs = encode_batched(model, preprocess(pixels, n_bits, noise=False), batch_size)
    return decode_batched(model, edit_latents(zs, direction, alphas), batch_size,
                          progress=progress)
