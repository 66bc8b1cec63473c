"""Datamodules over ``torchvision.datasets``: MNIST, Fashion-MNIST, CIFAR-10, SVHN, CelebA.

Each reads torchvision's on-disk layout under ``root`` and downloads there in ``prepare_data``
when ``download=True`` and the files are missing. Validation (and test) uses the dataset's test
split (CelebA: its ``eval_split``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch.utils.data import Dataset
from torchvision.transforms import v2

from flowgen.data.base import ImageDataModule
from flowgen.data.datasets import centre_padding
from flowgen.data.images import check_min_size, read_image


class TorchvisionDataModule(ImageDataModule):
    """A ``torchvision.datasets`` class (MNIST-like signature) as uint8 ``[C, image_size,
    image_size]`` tensors, zero-padded centred from ``native_size``. Subclasses with another
    signature override ``_make``; with other preprocessing, ``_transform``."""

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
        self.transform = self._transform(image_size)

    def _transform(self, image_size: int) -> v2.Transform:
        before, after = centre_padding(self.native_size, image_size)
        return v2.Compose([v2.PILToTensor(), v2.Pad([before, before, after, after])])

    def _make(self, train: bool, download: bool) -> Dataset:
        return self.dataset_cls(self.root, train=train, download=download, transform=self.transform)

    def _dataset(self, train: bool, download: bool) -> Dataset:
        name = self.dataset_cls.__name__
        try:
            return self._make(train, download)
        except ImportError as e:  # e.g. SVHN reads .mat files with scipy, an optional dependency
            pkg = (e.name or "?").split(".")[0]
            raise ImportError(
                f"{name} needs the {pkg!r} package to read its files: pip install {pkg}"
            ) from e
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

    def check_splits(self, num_replicas: int = 1) -> None:
        """As the base class, downloading first (as ``fit`` would) when one process runs. With
        several, only one per node may download (``prepare_data`` in ``fit``): files not there
        yet are not counted here (their official splits hold thousands of images)."""
        if self.download and num_replicas == 1:
            self.prepare_data()
        try:
            super().check_splits(num_replicas)
        except FileNotFoundError:
            if not self.download or num_replicas == 1:
                raise
            self.train_set = self.val_set = None  # fit sets up again after the download


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


class SVHNDataModule(TorchvisionDataModule):
    """SVHN digits, 32x32 RGB (73,257 train / 26,032 test; the "extra" split is not used).

    torchvision keeps ``train_32x32.mat`` and ``test_32x32.mat`` directly in ``root`` (no
    sub-folder) and needs scipy to read them. Labels are 0..9 (the files' 10 for digit 0 is
    mapped to 0 by torchvision).
    """

    dataset_cls = torchvision.datasets.SVHN
    native_size, native_channels = 32, 3

    def _make(self, train: bool, download: bool) -> Dataset:
        split = "train" if train else "test"
        return self.dataset_cls(self.root, split=split, download=download, transform=self.transform)


CELEBA_CROP = 148  # the centre crop of the 178x218 aligned faces used by RealNVP and Glow


def _no_label(target: torch.Tensor) -> int:
    # A module-level function (not a lambda) so DataLoader workers can pickle the dataset.
    return 0


class CelebA(torchvision.datasets.CelebA):
    """torchvision's CelebA with every image read by :func:`read_image` (a bad file names itself,
    grey or CMYK JPEGs become RGB, the file is closed) and refused when smaller than the 148x148
    crop (which would pad it with black)."""

    _TARGETS = {"attr": ("attr", slice(None)), "identity": ("identity", 0),
                "bbox": ("bbox", slice(None)), "landmarks": ("landmarks_align", slice(None))}

    def __getitem__(self, index: int) -> tuple:
        path = Path(self.root, self.base_folder, "img_align_celeba", self.filename[index])
        image = read_image(path, 3)
        check_min_size(image, path, CELEBA_CROP, "remove it or replace it with the aligned face")
        if self.transform is not None:
            image = self.transform(image)
        target = [getattr(self, self._TARGETS[t][0])[index, self._TARGETS[t][1]]
                  for t in self.target_type]
        if not target:
            return image, None
        target = tuple(target) if len(target) > 1 else target[0]
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class CelebADataModule(TorchvisionDataModule):
    """CelebA aligned faces (162,770 train / 19,867 valid / 19,962 test), preprocessed as in the
    RealNVP and Glow papers: centre crop 148x148, then resize to ``image_size`` (bilinear,
    antialiased), uint8 RGB.

    torchvision reads ``root/celeba/``: ``img_align_celeba/*.jpg``, ``list_eval_partition.txt``,
    ``identity_CelebA.txt``, ``list_attr_celeba.txt``, ``list_bbox_celeba.txt`` and
    ``list_landmarks_align_celeba.txt`` (all are loaded whatever the target). Downloading goes
    through Google Drive and needs the ``gdown`` package.

    Labels are all 0: the 40 binary attributes are not a class. They stay available as
    ``train_set.attr`` / ``val_set.attr`` (``[N, 40]`` in {0, 1}), named by ``attr_names`` once
    ``setup`` has run. ``eval_split`` picks the split validation uses: "valid" or "test".
    """

    dataset_cls = CelebA
    native_size, native_channels = CELEBA_CROP, 3

    def __init__(
        self,
        root: str | Path,
        download: bool = True,
        image_size: int = 64,
        eval_split: str = "valid",
        **loader_kwargs,
    ) -> None:
        if eval_split not in ("valid", "test"):
            raise ValueError(f"eval_split={eval_split!r}: use 'valid' or 'test'")
        self.eval_split = eval_split
        self.attr_names: list[str] = []
        super().__init__(root, download=download, image_size=image_size, **loader_kwargs)

    def _transform(self, image_size: int) -> v2.Transform:
        if image_size < 1:
            raise ValueError(f"image_size={image_size} must be a positive number of pixels")
        return v2.Compose(
            [
                v2.CenterCrop(CELEBA_CROP),
                v2.Resize([image_size, image_size], antialias=True),
                v2.PILToTensor(),
            ]
        )

    def _make(self, train: bool, download: bool) -> Dataset:
        return self.dataset_cls(
            self.root,
            split="train" if train else self.eval_split,
            target_type="attr",
            target_transform=_no_label,
            download=download,
            transform=self.transform,
        )

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        self.attr_names = list(self.train_set.attr_names)
