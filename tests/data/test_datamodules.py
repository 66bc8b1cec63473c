"""Datamodule tests. Nothing here downloads: torchvision datasets are written to tmp dirs in
their real on-disk formats, the offline tests stub the download function, and the autouse
fixture in conftest.py refuses any other network access."""

import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

from flowgen.data.datamodules import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    NpzDataModule,
)
from flowgen.data.datasets import MNIST5K_PATH

REPO = Path(__file__).resolve().parents[2]
SHARED_MNIST = REPO.parent / "shared/datasets/mnist.npz"


@pytest.fixture(scope="module")
def mnist5k():
    with np.load(MNIST5K_PATH) as f:
        return {k: f[k] for k in f.files}


def padded(x: np.ndarray, pad: int = 2) -> np.ndarray:
    """Zero-pad the two trailing (spatial) dims of [..., H, W]."""
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)])


def as_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack(xs).numpy(), np.array([int(y) for y in ys])


# --------------------------------------------------------------------- embedded mnist5k.npz


def test_embedded_file_layout(mnist5k):
    assert MNIST5K_PATH == REPO / "data/mnist5k.npz"
    assert sorted(mnist5k) == ["x_test", "x_train", "y_test", "y_train"]
    assert mnist5k["x_train"].shape == (5000, 32, 32) and mnist5k["x_train"].dtype == np.uint8
    assert mnist5k["x_test"].shape == (1000, 32, 32) and mnist5k["x_test"].dtype == np.uint8
    assert mnist5k["y_train"].shape == (5000,) and mnist5k["y_train"].dtype == np.int64
    assert mnist5k["y_test"].shape == (1000,) and mnist5k["y_test"].dtype == np.int64
    assert np.bincount(mnist5k["y_train"], minlength=10).tolist() == [500] * 10
    for x in (mnist5k["x_train"], mnist5k["x_test"]):
        border = np.ones((32, 32), bool)
        border[2:30, 2:30] = False
        assert not x[:, border].any(), "the 2-pixel padding border must be zero"
        assert x[:, 2:30, 2:30].max() == 255


def test_embedded_file_matches_shared_mnist(mnist5k):
    if not SHARED_MNIST.exists():
        pytest.skip(f"shared MNIST not available at {SHARED_MNIST}")
    with np.load(SHARED_MNIST) as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    idx = sorted(i for c in range(10) for i in np.flatnonzero(y_train == c)[:500])
    np.testing.assert_array_equal(mnist5k["x_train"], padded(x_train[idx]))
    np.testing.assert_array_equal(mnist5k["y_train"], y_train[idx])
    np.testing.assert_array_equal(mnist5k["x_test"], padded(x_test[:1000]))
    np.testing.assert_array_equal(mnist5k["y_test"], y_test[:1000])


# --------------------------------------------------------------------------- NpzDataModule


def test_npz_embedded_batches(mnist5k):
    dm = NpzDataModule(MNIST5K_PATH, batch_size=32, val_batch_size=100)
    assert (dm.channels, dm.image_size, dm.batch_size, dm.num_workers) == (1, 32, 32, 0)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (32, 1, 32, 32)
    assert y.dtype == torch.int64 and y.shape == (32,)
    x, y = next(iter(dm.val_dataloader()))  # unshuffled: the first test images, in order
    assert x.shape == (100, 1, 32, 32)
    np.testing.assert_array_equal(x[:, 0].numpy(), mnist5k["x_test"][:100])
    np.testing.assert_array_equal(y.numpy(), mnist5k["y_test"][:100])
    assert len(dm.test_dataloader().dataset) == 1000


def test_npz_relative_default_path_resolves_from_any_cwd(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert NpzDataModule("data/mnist5k.npz").path == MNIST5K_PATH


def test_loader_settings():
    dm = NpzDataModule(MNIST5K_PATH, batch_size=64, num_workers=2, pin_memory=True)
    dm.setup()
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert isinstance(train.sampler, torch.utils.data.RandomSampler) and train.drop_last
    assert isinstance(val.sampler, torch.utils.data.SequentialSampler) and not val.drop_last
    assert val.batch_size == 64  # val_batch_size defaults to batch_size
    assert train.persistent_workers and train.pin_memory and train.num_workers == 2
    assert not NpzDataModule(MNIST5K_PATH).pin_memory  # off by default
    assert len(train) == 5000 // 64


def test_npz_colour_nhwc_and_padding(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / "colour.npz"
    np.savez(path, x_train=x_train, x_test=x_test)  # no labels: they default to zeros

    dm = NpzDataModule(path, channels=3)
    assert (dm.channels, dm.image_size) == (3, 8)
    dm.setup()
    x, y = as_arrays(dm.train_set)
    np.testing.assert_array_equal(x, x_train.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(y, np.zeros(6))
    assert dm.val_set.tensors[1].dtype == torch.int64

    dm = NpzDataModule(path, image_size=12)
    assert dm.image_size == 12
    dm.setup()
    x, _ = as_arrays(dm.val_set)
    assert x.shape == (4, 3, 12, 12)
    np.testing.assert_array_equal(x, padded(x_test.transpose(0, 3, 1, 2)))

    x, _ = as_arrays(_setup(path, image_size=11).train_set)
    assert x.shape == (6, 3, 11, 11)  # odd remainder goes after
    np.testing.assert_array_equal(x[:, :, 1:9, 1:9], x_train.transpose(0, 3, 1, 2))


def _setup(path, image_size):
    dm = NpzDataModule(path, image_size=image_size)
    dm.setup()
    return dm


def _write(tmp_path, name="bad.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


GREY = np.zeros((3, 8, 8), np.uint8)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x_train": GREY}, r"has keys \['x_train'\], need x_train and x_test"),
        ({"x_train": GREY.astype(np.float32), "x_test": GREY}, r"x_train has dtype float32.*uint8"),
        ({"x_train": GREY, "x_test": np.zeros((3, 8, 6), np.uint8)}, r"x_test images are 8x6"),
        ({"x_train": np.zeros((3, 3, 8, 8), np.uint8), "x_test": GREY}, r"need square"),
        ({"x_train": np.zeros((3, 64), np.uint8), "x_test": GREY}, r"\(2 dims\).*\[N,H,W\]"),
        ({"x_train": GREY, "x_test": np.zeros((3, 9, 9), np.uint8)}, r"differ in shape"),
        ({"x_train": GREY.astype(np.uint16), "x_test": GREY},
         r"x_train has dtype uint16, need uint8 .*if 16-bit: np\.round\(x / 257\)"),
        ({"x_train": GREY, "x_test": GREY.astype(np.int64)},
         r"x_test has dtype int64, need uint8 .*if in 0\.\.255: x\.astype\(np\.uint8\)"),
        ({"x_train": GREY.astype(bool), "x_test": GREY},
         r"dtype bool.*x\.astype\(np\.uint8\) \* 255"),
        ({"x_train": GREY.astype(np.float64), "x_test": GREY}, r"if in \[0, 1\]: \(x \* 255\)"),
        ({"x_train": np.zeros((3, 8, 8, 2), np.uint8), "x_test": GREY},
         r"x_train images have 2 channels, need 1 \(grey\) or 3 \(RGB\)"),
        ({"x_train": np.zeros((3, 8, 8, 4), np.uint8), "x_test": np.zeros((3, 8, 8, 4), np.uint8)},
         r"images have 4 channels.*x\[\.\.\., :3\]"),
        ({"x_train": np.zeros((3, 8, 8, 5), np.uint8), "x_test": GREY}, r"have 5 channels"),
        ({"x_train": np.zeros((0, 8, 8), np.uint8), "x_test": GREY},
         r"x_train holds no images \(shape \(0, 8, 8\)\): it needs at least one"),
        ({"x_train": GREY, "x_test": np.zeros((0, 8, 8), np.uint8)}, r"x_test holds no images"),
    ],
    ids=["missing-key", "dtype", "non-square", "nchw", "ndim", "train-test-mismatch",
         "uint16", "int64", "bool", "float64", "2-channels", "4-channels", "5-channels",
         "no-train-images", "no-test-images"],
)
def test_npz_invalid_contents(tmp_path, arrays, match):
    with pytest.raises(ValueError, match=match):
        NpzDataModule(_write(tmp_path, **arrays))


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, 1.5, 2]), r"y_train\[1\] = 1\.5: labels must be whole numbers >= 0"),
        (np.array([0, -1, 2]), r"y_train\[1\] = -1: labels must be whole numbers >= 0"),
        (np.array([0, 1, np.nan]), r"y_train\[2\] = nan"),
        (np.array(["cat", "dog", "cat"]), r"y_train has dtype <U3, need integer class labels"),
        (np.array([[0, 1], [1, 0], [0, 0]]), r"y_train has 6 labels for 3 images"),
    ],
    ids=["fraction", "negative", "nan", "strings", "one-hot"],
)
def test_npz_bad_labels(tmp_path, labels, match):
    dm = NpzDataModule(_write(tmp_path, x_train=GREY, x_test=GREY, y_train=labels))
    with pytest.raises(ValueError, match=match):
        dm.setup()


def test_npz_labels_of_any_whole_number_dtype(tmp_path):
    for labels in (np.array([2, 0, 1], np.uint8), np.array([2.0, 0.0, 1.0], np.float32),
                   np.array([[2], [0], [1]], np.int16), np.array([True, False, True])):
        dm = NpzDataModule(_write(tmp_path, x_train=GREY, x_test=GREY, y_train=labels))
        dm.setup()
        assert dm.train_set.tensors[1].dtype == torch.int64
        assert dm.train_set.tensors[1].tolist() == labels.reshape(-1).astype(int).tolist()


def test_npz_single_channel_nhwc(tmp_path):
    dm = NpzDataModule(_write(tmp_path, x_train=GREY[..., None], x_test=GREY[..., None]))
    dm.setup()
    assert dm.channels == 1 and dm.train_set.tensors[0].shape == (3, 1, 8, 8)


def test_npz_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found: .*nope\.npz.*data\.path="):
        NpzDataModule(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    "content",
    [b"not an npz at all", MNIST5K_PATH.read_bytes()[:5000], b"\x93NUMPY\x01\x00"],
    ids=["garbage", "truncated", "npy-header"],
)
def test_npz_corrupt_file(tmp_path, content):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"cannot read .*corrupt\.npz as an \.npz archive"):
        NpzDataModule(path)


def test_npz_bad_options(tmp_path):
    path = _write(tmp_path, x_train=GREY, x_test=GREY, y_train=np.zeros(2), y_test=np.zeros(3))
    with pytest.raises(ValueError, match=r"image_size=4 is smaller .*\(8x8\)"):
        NpzDataModule(path, image_size=4)
    with pytest.raises(ValueError, match=r"holds 1-channel images but channels=3"):
        NpzDataModule(path, channels=3)
    with pytest.raises(ValueError, match=r"y_train has 2 labels for 3 images"):
        NpzDataModule(path).setup()


# -------------------------------------------------------------------- torchvision datasets


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (uncompressed, as torchvision keeps it after extracting): 0x0000, type 0x08
    (uint8), ndim, big-endian uint32 dims, then the raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def write_mnist_like(root: Path, folder: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 20, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 10, dtype=np.uint8),
    }
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name, array in data.items():
        write_idx(raw / name, array)
    return data


@pytest.mark.parametrize(
    ("cls", "folder"),
    [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")],
)
def test_mnist_like_from_disk(tmp_path, cls, folder):
    assert cls.dataset_cls.__name__ == folder  # torchvision reads <root>/<class name>/raw
    data = write_mnist_like(tmp_path, folder)
    dm = cls(tmp_path, download=False, batch_size=10)
    assert (dm.channels, dm.image_size) == (1, 32)
    dm.prepare_data()
    dm.setup("fit")
    x, y = as_arrays(dm.train_set)
    np.testing.assert_array_equal(x[:, 0], padded(data["train-images-idx3-ubyte"]))
    np.testing.assert_array_equal(y, data["train-labels-idx1-ubyte"])
    x, y = next(iter(dm.val_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (10, 1, 32, 32) and y.dtype == torch.int64
    np.testing.assert_array_equal(x[:, 0].numpy(), padded(data["t10k-images-idx3-ubyte"]))
    np.testing.assert_array_equal(y.numpy(), data["t10k-labels-idx1-ubyte"])
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (10, 1, 32, 32) and y.dtype == torch.int64


def test_mnist_present_files_need_no_network(tmp_path):
    data = write_mnist_like(tmp_path, "MNIST")
    dm = MNISTDataModule(tmp_path, download=True, image_size=28)  # files exist: no download
    dm.prepare_data()
    dm.setup()
    x, _ = as_arrays(dm.val_set)
    np.testing.assert_array_equal(x[:, 0], data["t10k-images-idx3-ubyte"])


def test_cifar10_from_disk(tmp_path, monkeypatch):
    # torchvision verifies each batch file (and batches.meta) against the md5 of the real
    # CIFAR-10 release; our synthetic files can't match, so accept any file that exists.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        # The real files are Python 2 pickles read with encoding="latin1", so keys load as str.
        batches[name] = {
            "data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, 4).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batches[name]))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcdefghij")}))

    dm = CIFAR10DataModule(tmp_path, download=False, batch_size=4)
    assert (dm.channels, dm.image_size) == (3, 32)
    dm.setup("fit")
    x, y = as_arrays(dm.train_set)
    train = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    assert x.dtype == np.uint8 and x.shape == (20, 3, 32, 32)
    # Each 3072-vector is the R plane, then G, then B, each 32x32 row-major.
    np.testing.assert_array_equal(x[:, 0], train[:, :1024].reshape(-1, 32, 32))
    np.testing.assert_array_equal(x[:, 2], train[:, 2048:].reshape(-1, 32, 32))
    np.testing.assert_array_equal(x.reshape(20, 3072), train)
    labels = [label for i in range(1, 6) for label in batches[f"data_batch_{i}"]["labels"]]
    np.testing.assert_array_equal(y, labels)
    x, y = next(iter(dm.val_dataloader()))
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.reshape(4, 3072).numpy(), batches["test_batch"]["data"])


def _offline(*args, **kwargs):
    raise URLError("[Errno -3] Temporary failure in name resolution")


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule])
def test_mnist_offline_error(tmp_path, monkeypatch, cls):
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", _offline)
    dm = cls(tmp_path / "empty", download=True)
    with pytest.raises(
        FileNotFoundError, match=r"not found under root=.*empty.*offline.*copy"
    ) as e:
        dm.prepare_data()
    assert isinstance(e.value.__cause__, RuntimeError)  # torchvision's own error stays chained


def test_cifar10_offline_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", _offline)
    with pytest.raises(FileNotFoundError, match=r"CIFAR10 not found under root=.*offline"):
        CIFAR10DataModule(tmp_path, download=True).prepare_data()


def test_missing_files_without_download(tmp_path):
    dm = MNISTDataModule(tmp_path, download=False)
    dm.prepare_data()  # nothing to download; the error comes when the data is needed
    with pytest.raises(FileNotFoundError, match=r"download=False and the files are missing"):
        dm.setup("fit")
    with pytest.raises(ValueError, match=r"image_size=16 is smaller"):
        MNISTDataModule(tmp_path, image_size=16)
