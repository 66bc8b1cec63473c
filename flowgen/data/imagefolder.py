"""Any folder of image files as a datamodule, split into train/val by a seeded permutation.

Images are found recursively (``.jpg .jpeg .png .bmp .webp``, any case; hidden files and folders
skipped), sorted by path, read by :func:`flowgen.data.images.read_image` (its rules for bit depths,
alpha, palettes, EXIF rotation; a bad file names itself), resized so the shorter side is
``image_size`` and centre-cropped to ``image_size x image_size``. An image whose shorter side is
below ``image_size`` is refused unless ``upscale=True``: enlarging it would blur it silently.

Labels follow ``torchvision.datasets.ImageFolder``: if every image sits in a sub-folder of
``root``, the label is the index of its top-level sub-folder in sorted order (``classes``;
sub-folders without images are ignored); if any image sits directly in ``root``, all labels are 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from flowgen.data.base import ImageDataModule
from flowgen.data.images import check_min_size, read_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def find_images(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, classes) under ``root``; ``classes`` is empty when there are none."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"image folder {root} {what} (set data.root=/path/to/images)")
    files = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [
            Path(folder, n)
            for n in names
            if not n.startswith(".") and n.lower().endswith(IMAGE_EXTENSIONS)
        ]
    if not files:
        raise FileNotFoundError(
            f"no images ({' '.join(IMAGE_EXTENSIONS)}) found in {root} or its sub-folders"
        )
    files.sort()
    tops = [f.relative_to(root).parts for f in files]
    if any(len(parts) == 1 for parts in tops):  # images directly in root: one unlabelled set
        return files, [0] * len(files), []
    classes = sorted({parts[0] for parts in tops})
    index = {c: i for i, c in enumerate(classes)}
    return files, [index[parts[0]] for parts in tops], classes


class ImageFiles(Dataset):
    """``(uint8 [C, H, W], int)`` items: ``files`` read as ``channels`` by ``read_image``, each at
    least ``min_size`` on its shorter side (``small_fix``: what the refusal tells the user to
    do), through ``transform``; a bad file raises a ``ValueError`` naming it."""

    def __init__(self, files: list[Path], labels: list[int], channels: int, transform,
                 min_size: int = 1, small_fix: str = "remove it") -> None:
        self.files, self.labels, self.channels = files, labels, channels
        self.transform, self.min_size, self.small_fix = transform, min_size, small_fix

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.files[index]
        image = read_image(path, self.channels)
        check_min_size(image, path, self.min_size, self.small_fix)
        return self.transform(image), self.labels[index]


class ImageFolderDataModule(ImageDataModule):
    """Images from any folder (see the module docstring), ``val_fraction`` of them held out for
    validation by a permutation seeded with ``seed`` (the same split on every run and process).
    ``val_fraction=0`` gives an empty validation set (which training refuses: see
    ``check_splits``). The folder is scanned here, so a missing or empty one fails before the
    model is built; unreadable or too small files fail when loaded, named. ``upscale=True``
    accepts images smaller than ``image_size`` and enlarges them."""

    def __init__(
        self,
        root: str | Path,
        image_size: int,
        channels: int = 3,
        val_fraction: float = 0.1,
        seed: int = 0,
        upscale: bool = False,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        if channels not in (1, 3):
            raise ValueError(f"channels={channels}: use 3 (RGB) or 1 (greyscale)")
        if image_size < 1:
            raise ValueError(f"image_size={image_size} must be a positive number of pixels")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction={val_fraction} must be in [0, 1)")
        self.root = Path(root).expanduser()
        self.channels, self.image_size = channels, image_size
        self.val_fraction, self.seed, self.upscale = val_fraction, seed, upscale
        self.files, self.labels, self.classes = find_images(self.root)
        n = len(self.files)
        # at least one validation image when asked for any, and always one to train on
        self.num_val = min(max(round(n * val_fraction), int(val_fraction > 0)), n - 1)
        self.transform = v2.Compose(
            [
                v2.Resize(image_size, antialias=True),  # shorter side to image_size
                v2.CenterCrop(image_size),
                v2.PILToTensor(),
            ]
        )

    def split_indices(self) -> tuple[list[int], list[int]]:
        """(train, val) indices into ``files``, each sorted; fixed by ``seed``."""
        perm = torch.randperm(len(self.files), generator=torch.Generator().manual_seed(self.seed))
        val = sorted(perm[: self.num_val].tolist())
        return sorted(perm[self.num_val :].tolist()), val

    def _subset(self, indices: list[int]) -> ImageFiles:
        files = [self.files[i] for i in indices]
        fix = (f"remove it, lower data.image_size (now {self.image_size}) or pass "
               f"data.upscale=true to enlarge small images")
        return ImageFiles(files, [self.labels[i] for i in indices], self.channels,
                          self.transform, 1 if self.upscale else self.image_size, fix)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            train, val = self.split_indices()
            self.train_set, self.val_set = self._subset(train), self._subset(val)

    def describe_split(self, train: bool) -> tuple[str, str]:
        held_out = f"data.val_fraction={self.val_fraction} of {len(self.files)} images"
        if train:
            return (f"training split of {self.root} ({held_out} held out)",
                    "add images or lower data.val_fraction")
        grow = "raise data.val_fraction above 0" if self.val_fraction == 0 else "add images"
        return f"validation split of {self.root} ({held_out})", grow
