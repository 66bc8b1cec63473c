"""Any folder of image files as a datamodule, split into train/val by a seeded permutation.

Images are found recursively (``.jpg .jpeg .png .bmp .webp``, any case; hidden files and folders
skipped), sorted by path, converted to RGB (or L for ``channels=1``), resized so the shorter side
is ``image_size`` and centre-cropped to ``image_size x image_size``.

Labels follow ``torchvision.datasets.ImageFolder``: if every image sits in a sub-folder of
``root``, the label is the index of its top-level sub-folder in sorted order (``classes``;
sub-folders without images are ignored); if any image sits directly in ``root``, all labels are 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from flowgen.data.base import ImageDataModule

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
    """``(uint8 [C, H, W], int)`` items decoded from ``files`` through ``transform``; a file PIL
    cannot read raises a ``ValueError`` naming it."""

    def __init__(self, files: list[Path], labels: list[int], mode: str, transform) -> None:
        self.files, self.labels, self.mode, self.transform = files, labels, mode, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.files[index]
        try:
            with Image.open(path) as img:
                img = img.convert(self.mode)  # decodes the whole file: truncation shows here
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"cannot read image {path}: {e}; remove or replace it") from e
        return self.transform(img), self.labels[index]


class ImageFolderDataModule(ImageDataModule):
    """Images from any folder (see the module docstring), ``val_fraction`` of them held out for
    validation by a permutation seeded with ``seed`` (the same split on every run and process).
    ``val_fraction=0`` gives an empty validation set. The folder is scanned here, so a missing or
    empty one fails before the model is built; unreadable files fail when loaded, named."""

    def __init__(
        self,
        root: str | Path,
        image_size: int,
        channels: int = 3,
        val_fraction: float = 0.1,
        seed: int = 0,
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
        self.val_fraction, self.seed = val_fraction, seed
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
        mode = "RGB" if self.channels == 3 else "L"
        files = [self.files[i] for i in indices]
        return ImageFiles(files, [self.labels[i] for i in indices], mode, self.transform)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            train, val = self.split_indices()
            self.train_set, self.val_set = self._subset(train), self._subset(val)
