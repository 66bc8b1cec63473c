"""Lightning datamodules yielding raw uint8 images.

Every train/val batch is ``(images, labels)`` with ``images`` uint8 ``[B, C, H, W]`` in 0..255 (not
scaled: the training module dequantizes on device) and ``labels`` int64 ``[B]``. ``channels`` and
``image_size`` are set in ``__init__`` because the model is built from them before ``setup`` runs.
Validation (and test) uses the dataset's test split.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from flowgen.data.datasets import MNIST5K_PATH, centre_padding, inspect_npz, load_npz, resolve_path


class ImageDataModule(L.LightningDataModule):
    """Loader logic shared by all datamodules; subclasses set ``channels``, ``image_size`` and
    assign ``self.train_set`` / ``self.val_set`` (datasets of ``(uint8 [C,H,W], int)``) in
    ``setup``."""

    channels: int
    image_size: int

    def __init__(
        self,
        batch_size: int = 64,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
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
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


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


class TorchvisionDataModule(ImageDataModule):
    """A ``torchvision.datasets`` class (MNIST-like signature) as uint8 ``[C, image_size,
    image_size]`` tensors, zero-padded centred from ``native_size``."""

    dataset_cls: type[torchvision.datasets.VisionDataset]
    native_size: int
    native_channels: int

    def __init__(
        self, root: str | Path, download: bool = True, image_size: int = 32, **loader_kwargs
    ) -> None:
        super().__init__(**loader_kwargs)
        self.root = Path(root).expanduser()
        self.download = download
        self.channels = self.native_channels
        self.image_size = image_size
        before, after = centre_padding(self.native_size, image_size)
        self.transform = v2.Compose([v2.PILToTensor(), v2.Pad([before, before, after, after])])

    def _dataset(self, train: bool, download: bool) -> Dataset:
        name = self.dataset_cls.__name__
        try:
            return self.dataset_cls(
                self.root, train=train, download=download, transform=self.transform
            )
        except (RuntimeError, OSError) as e:
            how = (
                "downloading failed (offline?)"
                if download
                else "download=False and the files are missing or corrupt"
            )
            raise FileNotFoundError(
                f"{name} not found under root={self.root} and {how}: copy the {name} files "
                f"there (torchvision layout) or rerun online with data.download=true ({e})"
            ) from e

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node only: the right place to download.
        if self.download:
            self._dataset(train=True, download=True)
            self._dataset(train=False, download=True)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self._dataset(train=True, download=False)
            self.val_set = self._dataset(train=False, download=False)


class MNISTDataModule(TorchvisionDataModule):
    """MNIST, 28x28 grey padded to ``image_size`` (32: three 2x squeezes divide evenly)."""

    dataset_cls = torchvision.datasets.MNIST
    native_size, native_channels = 28, 1


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST, 28x28 grey padded to ``image_size``."""

    dataset_cls = torchvision.datasets.FashionMNIST


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10, 32x32 RGB."""

    dataset_cls = torchvision.datasets.CIFAR10
    native_size, native_channels = 32, 3
