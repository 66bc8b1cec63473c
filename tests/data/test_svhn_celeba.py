"""SVHN and CelebA datamodules on tiny files written in the real on-disk formats. torchvision
checks each file against the md5 of the real release, which synthetic files can't match: the
tests patch that check (only it) to accept any file that exists."""

import sys
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

from flowgen.data.datamodules import CelebADataModule, RandomHFlip, SVHNDataModule


def as_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack(xs).numpy(), np.array([int(y) for y in ys])


def _offline(*args, **kwargs):
    raise URLError("[Errno -3] Temporary failure in name resolution")


# ------------------------------------------------------------------------------------- SVHN


def write_svhn(root: Path, split: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``<split>_32x32.mat`` as released: X uint8 [32, 32, 3, N] (MATLAB's H, W, C, N) and
    y uint8 [N, 1] with 10 for the digit 0. Returns (images [N,3,32,32], digits [N])."""
    sio = pytest.importorskip("scipy.io", reason="torchvision's SVHN reads .mat files with scipy")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    digits = np.arange(n) % 10
    y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)
    root.mkdir(parents=True, exist_ok=True)
    sio.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
    return x.transpose(3, 2, 0, 1), digits


@pytest.fixture
def svhn_root(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", lambda *a, **k: True)
    root = tmp_path / "svhn"
    return root, write_svhn(root, "train", 12, seed=0), write_svhn(root, "test", 6, seed=1)


def test_svhn_pixels_round_trip(svhn_root):
    root, (x_train, y_train), (x_test, y_test) = svhn_root
    dm = SVHNDataModule(root, download=False, batch_size=4, val_batch_size=6, hflip=True)
    assert (dm.channels, dm.image_size) == (3, 32)
    dm.setup("fit")
    x, y = as_arrays(dm.train_set)
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_array_equal(y, y_train)  # 10 in the file is the digit 0
    x, y = next(iter(dm.val_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (6, 3, 32, 32) and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), x_test)
    np.testing.assert_array_equal(y.numpy(), y_test)
    assert isinstance(dm.train_dataloader().collate_fn, RandomHFlip)
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 32, 32) and y.dtype == torch.int64

    dm = SVHNDataModule(root, download=False, image_size=36)  # zero-padded centred
    dm.setup()
    x, _ = as_arrays(dm.val_set)
    np.testing.assert_array_equal(x[:, :, 2:34, 2:34], x_test)
    assert not x[:, :, :2].any() and not x[:, :, :, 34:].any()


def test_svhn_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.svhn, "download_url", _offline)
    with pytest.raises(FileNotFoundError, match=r"SVHN not found under root=.*empty.*offline"):
        SVHNDataModule(tmp_path / "empty", download=True).prepare_data()
    with pytest.raises(FileNotFoundError, match=r"download=False and the files are missing"):
        SVHNDataModule(tmp_path / "empty", download=False).setup()


def test_svhn_without_scipy(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", lambda *a, **k: True)
    (tmp_path / "train_32x32.mat").write_bytes(b"never read")
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # as if scipy were not installed
    with pytest.raises(ImportError, match=r"SVHN needs the 'scipy' package.*pip install scipy"):
        SVHNDataModule(tmp_path, download=False).setup()


# ----------------------------------------------------------------------------------- CelebA

N_ATTR = 40
# 3 train, 2 valid, 2 test (torchvision's CelebA fails on a split of one image: it squeezes
# the index list to a scalar)
PARTITION = [0, 0, 0, 1, 1, 2, 2]


def write_celeba(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """``root/celeba`` as torchvision expects it: 178x218 JPEGs in img_align_celeba/ and the
    five annotation files in their released formats (a count line, then a header line, for all
    but the partition and identity lists). Returns (decoded images [N,218,178,3], attr [N,40])."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{i + 1:06d}.jpg" for i in range(len(PARTITION))]
    yy, xx = np.mgrid[0:218, 0:178]
    images = []
    for i, name in enumerate(names):  # smooth images, so resampling differences stay tiny
        rgb = np.stack([xx * 1.2, yy + 10 * i, 255 - yy - xx / 2], -1).clip(0, 255)
        path = folder / "img_align_celeba" / name
        Image.fromarray(rgb.astype(np.uint8)).save(path, quality=95)
        images.append(np.asarray(Image.open(path)))
    attr = rng.choice([-1, 1], (len(names), N_ATTR))

    def write(filename, rows, header=None):
        lines = ([str(len(rows)), header] if header else []) + rows
        (folder / filename).write_text("\n".join(lines) + "\n")

    write("list_eval_partition.txt", [f"{n} {p}" for n, p in zip(names, PARTITION, strict=True)])
    write("identity_CelebA.txt", [f"{n} {2880 + i}" for i, n in enumerate(names)])
    attr_names = " ".join(f"Attr_{j}" for j in range(N_ATTR))
    write("list_attr_celeba.txt", [f"{n} " + " ".join(f"{v:2d}" for v in a)
                                   for n, a in zip(names, attr, strict=True)], attr_names)
    write("list_bbox_celeba.txt", [f"{n}    95  71 226 313" for n in names],
          "image_id x_1 y_1 width height")
    marks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y"
    write("list_landmarks_align_celeba.txt",
          [f"{n} 69  109  106  113   77  142   73  152  108  154" for n in names],
          marks + " rightmouth_x rightmouth_y")
    return np.stack(images), (attr + 1) // 2


@pytest.fixture
def celeba_root(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.celeba, "check_integrity", lambda *a, **k: True)
    return tmp_path, *write_celeba(tmp_path)


def test_celeba_centre_crop_148(celeba_root):
    root, images, attr = celeba_root
    # download=True finds the files present and fetches nothing (the network is refused)
    dm = CelebADataModule(root, download=True, image_size=148, batch_size=3)
    dm.prepare_data()
    dm.setup("fit")
    x, y = as_arrays(dm.train_set)
    assert x.dtype == np.uint8 and x.shape == (3, 3, 148, 148)
    # round((218 - 148) / 2) = 35 rows and round((178 - 148) / 2) = 15 columns off the top/left
    np.testing.assert_array_equal(x, images[:3, 35:183, 15:163].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(y, 0)
    assert dm.attr_names == [f"Attr_{j}" for j in range(N_ATTR)]
    assert torch.equal(dm.train_set.attr, torch.from_numpy(attr[:3]))
    assert torch.equal(dm.val_set.attr, torch.from_numpy(attr[3:5]))


def test_celeba_resized_batches(celeba_root):
    root, images, _ = celeba_root
    dm = CelebADataModule(root, download=False, batch_size=2, hflip=True)
    assert (dm.channels, dm.image_size) == (3, 64)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (2, 3, 64, 64)
    assert y.dtype == torch.int64 and torch.equal(y, torch.zeros(2, dtype=torch.int64))
    x, y = next(iter(dm.val_dataloader()))  # "valid" split, in order, never flipped
    assert x.shape == (2, 3, 64, 64) and len(dm.val_set) == 2
    crop = torch.from_numpy(images[3:5, 35:183, 15:163]).permute(0, 3, 1, 2).double()
    expected = F.interpolate(crop, size=64, mode="bilinear", antialias=True).round()
    assert (x.double() - expected).abs().max() <= 2

    test = CelebADataModule(root, download=False, eval_split="test", image_size=32)
    test.setup()
    assert len(test.val_set) == 2 and test.val_set[0][0].shape == (3, 32, 32)


def test_celeba_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.celeba, "download_file_from_google_drive", _offline)
    with pytest.raises(FileNotFoundError, match=r"CelebA not found under root=.*offline"):
        CelebADataModule(tmp_path, download=True).prepare_data()
    with pytest.raises(FileNotFoundError, match=r"download=False and the files are missing"):
        CelebADataModule(tmp_path, download=False).setup()
    with pytest.raises(ValueError, match=r"eval_split='val': use 'valid' or 'test'"):
        CelebADataModule(tmp_path, eval_split="val")


def test_celeba_reads_every_image_through_read_image(celeba_root):
    root, images, _ = celeba_root
    files = root / "celeba" / "img_align_celeba"
    grey = np.asarray(Image.open(files / "000001.jpg").convert("L"))
    Image.fromarray(grey).save(files / "000001.jpg", quality=95)  # a greyscale JPEG
    Image.new("RGB", (100, 218)).save(files / "000002.jpg")  # narrower than the 148 crop
    (files / "000003.jpg").write_bytes(b"")
    dm = CelebADataModule(root, download=False, image_size=148)
    dm.setup()
    x, _ = dm.train_set[0]
    assert x.shape == (3, 148, 148)  # grey becomes RGB, not a 1-channel tensor
    for c in range(3):
        np.testing.assert_allclose(x[c].numpy(), grey[35:183, 15:163], atol=2)
    with pytest.raises(ValueError, match=rf"cannot read image {files / '000002.jpg'}: it is "
                                         rf"100x218, smaller than the 148x148"):
        dm.train_set[1]
    with pytest.raises(ValueError, match=rf"cannot read image {files / '000003.jpg'}: the file "
                                         rf"is empty"):
        dm.train_set[2]
    np.testing.assert_array_equal(dm.val_set[0][0].numpy(),
                                  images[3, 35:183, 15:163].transpose(2, 0, 1))
    assert isinstance(dm.train_set, torchvision.datasets.CelebA)
    target = torchvision.datasets.CelebA.__getitem__  # other target types as torchvision has them
    dm.val_set.target_type, dm.val_set.target_transform = ["identity", "bbox", "landmarks"], None
    ours, theirs = dm.val_set[1][1], target(dm.val_set, 1)[1]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
