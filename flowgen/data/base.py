"""The datamodule base class shared by every dataset, and the train-only flip augmentation.

Every train/val batch is ``(images, labels)`` with ``images`` uint8 ``[B, C, H, W]`` in 0..255 (not
scaled: the training module dequantizes on device) and ``labels`` int64 ``[B]``. ``channels`` and
``image_size`` are set in ``__init__`` because the model is built from them before ``setup`` runs.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, default_collate


class RandomHFlip:
    """Collate function: stack a batch, then mirror each image left-right with probability ``p``.

    Works on the uint8 ``[B, C, H, W]`` batch whatever the dataset (in-memory tensors included).
    Draws from ``generator`` if given, else from torch's global RNG, which Lightning's
    ``seed_everything`` seeds and DataLoader workers reseed each with their own seed.
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        self.p = p
        self.generator = generator

    def __call__(self, batch: list) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = default_collate(batch)
        flip = torch.rand(len(x), generator=self.generator) < self.p
        return torch.where(flip[:, None, None, None], x.flip(-1), x), y


class ImageDataModule(L.LightningDataModule):
    """Loader logic shared by all datamodules; subclasses set ``channels``, ``image_size`` and
    assign ``self.train_set`` / ``self.val_set`` (datasets of ``(uint8 [C,H,W], int)``) in
    ``setup``.

    ``hflip`` mirrors training images at random (validation and test batches never are); it is
    what the Glow/RealNVP papers do on CIFAR-10 and CelebA, and wrong for digits. Validation uses
    the dataset's own held-out split; only :class:`ImageFolderDataModule`, which has none, splits
    off ``val_fraction`` of the images itself.
    """

    channels: int
    image_size: int

    def __init__(
        self,
        batch_size: int = 64,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        hflip: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.hflip = hflip
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for loaders")
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.val_batch_size,
            shuffle=train,
            drop_last=train,  # a ragged last batch would give a noisy, over-weighted step
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=RandomHFlip() if train and self.hflip else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
