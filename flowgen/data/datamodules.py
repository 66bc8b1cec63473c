"""Lightning datamodules yielding raw uint8 images: the one place configs point at.

Every train/val batch is ``(images, labels)`` with ``images`` uint8 ``[B, C, H, W]`` in 0..255 (not
scaled: the training module dequantizes on device) and ``labels`` int64 ``[B]``. ``channels`` and
``image_size`` are set in ``__init__`` because the model is built from them before ``setup`` runs.
Every datamodule takes the loader options of :class:`ImageDataModule` (``batch_size``,
``val_batch_size``, ``num_workers``, ``pin_memory``, ``hflip``).

This module holds :class:`NpzDataModule` and re-exports the others: torchvision datasets from
:mod:`flowgen.data.torchvision_data`, image folders from :mod:`flowgen.data.imagefolder`.
"""

from __future__ import annotations

from pathlib import Path

from flowgen.data.base import ImageDataModule, RandomHFlip
from flowgen.data.datasets import MNIST5K_PATH, centre_padding, inspect_npz, load_npz, resolve_path
from flowgen.data.imagefolder import ImageFolderDataModule
from flowgen.data.torchvision_data import (
    CelebADataModule,
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    SVHNDataModule,
    TorchvisionDataModule,
)

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "NpzDataModule",
    "RandomHFlip",
    "SVHNDataModule",
    "TorchvisionDataModule",
]


class NpzDataModule(ImageDataModule):
    """Images from an ``.npz`` (see :mod:`flowgen.data.datasets`), held in memory as uint8
    ``[N,C,H,W]``; an ``image_size`` above the stored size zero-pads centred. The headers are
    checked here, so a bad file fails before the model is built."""

    def __init__(
        self,
        path: str | Path = MNIST5K_PATH,
        image_size: int | None = None,
        channels: int | None = None,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        self.path = resolve_path(path)
        self.channels, self.stored_size = inspect_npz(self.path)
        if channels is not None and channels != self.channels:
            raise ValueError(
                f"{self.path} holds {self.channels}-channel images but "
                f"channels={channels} was requested; drop data.channels or fix it"
            )
        self.image_size = image_size or self.stored_size
        centre_padding(self.stored_size, self.image_size)  # fail now on a too-small image_size

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = load_npz(self.path, self.image_size)

    def describe_split(self, train: bool) -> tuple[str, str]:
        key = "x_train" if train else "x_test"
        return f"{key} of {self.path}", f"add images to {key}"
