"""ImageFolderDataModule on small folders of real image files written to tmp dirs."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from flowgen.data.datamodules import ImageFolderDataModule, RandomHFlip


def save(path: Path, h: int, w: int, seed: int = 0, mode: str = "RGB") -> np.ndarray:
    """A random ``h x w`` image (lossless unless saved as .jpg); returns its decoded pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def as_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack(xs).numpy(), np.array([int(y) for y in ys])


def test_class_folders_exact_centre_crop(tmp_path):
    # Shorter side already 16: no resampling, so the centre crop is exact (round((24-16)/2) = 4).
    wide = save(tmp_path / "cats" / "wide.png", 16, 24, seed=1)
    tall = save(tmp_path / "dogs" / "deep" / "tall.bmp", 24, 16, seed=2)  # recursive search
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    (tmp_path / "empty_class").mkdir()  # holds no image: not a class
    (tmp_path / ".cache").mkdir()
    save(tmp_path / ".cache" / "thumb.png", 8, 8)  # hidden: skipped

    dm = ImageFolderDataModule(tmp_path, image_size=16, val_fraction=0)
    assert (dm.channels, dm.image_size, dm.classes) == (3, 16, ["cats", "dogs"])
    dm.setup()
    x, y = as_arrays(dm.train_set)
    assert x.dtype == np.uint8 and x.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(x[0], wide[:, 4:20].transpose(2, 0, 1))
    np.testing.assert_array_equal(x[1], tall[4:20].transpose(2, 0, 1))
    np.testing.assert_array_equal(y, [0, 1])
    assert len(dm.val_set) == 0


def test_flat_folder_resizes_converts_and_batches(tmp_path):
    for i in range(5):
        save(tmp_path / f"{i}.PNG", 40 + 10 * i, 60, seed=i)  # any size, any extension case
    save(tmp_path / "grey.jpeg", 50, 30, mode="L")
    save(tmp_path / "nested" / "a.webp", 33, 33)
    dm = ImageFolderDataModule(tmp_path, image_size=12, val_fraction=0.3, batch_size=4)
    assert dm.classes == [] and len(dm.files) == 7  # images directly in root: no classes
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (5, 2)
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 12, 12)
    assert y.dtype == torch.int64 and torch.equal(y, torch.zeros(4, dtype=torch.int64))
    x, _ = as_arrays(dm.val_set)
    assert x.shape == (2, 3, 12, 12)

    grey = ImageFolderDataModule(tmp_path, image_size=12, channels=1)
    grey.setup()
    x, _ = as_arrays(grey.train_set)
    assert grey.channels == 1 and x.shape == (6, 1, 12, 12)


def test_resize_matches_pil(tmp_path):
    rgb = save(tmp_path / "img.png", 30, 45)
    dm = ImageFolderDataModule(tmp_path, image_size=20, val_fraction=0)
    dm.setup()
    x, _ = dm.train_set[0]
    # shorter side 30 -> 20, longer 45 -> 30, then the middle 20 columns (from 5)
    expected = np.asarray(Image.fromarray(rgb).resize((30, 20), Image.BILINEAR))[:, 5:25]
    np.testing.assert_allclose(x.numpy().transpose(1, 2, 0), expected, atol=1)


def test_split_is_fixed_by_seed(tmp_path):
    for i in range(20):
        save(tmp_path / f"{i:02d}.png", 4, 4, seed=i)

    def split(seed, val_fraction=0.25):
        dm = ImageFolderDataModule(tmp_path, 4, val_fraction=val_fraction, seed=seed)
        dm.setup()
        return dm.train_set.files, dm.val_set.files

    train, val = split(seed=0)
    assert len(val) == 5 and sorted(train + val) == sorted(tmp_path.glob("*.png"))
    assert split(seed=0) == (train, val)
    assert split(seed=1)[1] != val
    assert len(split(seed=0, val_fraction=0.01)[1]) == 1  # asked for some: at least one


def test_hflip_is_train_only(tmp_path):
    save(tmp_path / "a.png", 4, 4)
    save(tmp_path / "b.png", 4, 4, seed=1)
    dm = ImageFolderDataModule(tmp_path, 4, val_fraction=0.5, hflip=True)
    dm.setup()
    assert isinstance(dm.train_dataloader().collate_fn, RandomHFlip)
    assert not isinstance(dm.val_dataloader().collate_fn, RandomHFlip)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image folder .*nope does not exist.*data\.root="):
        ImageFolderDataModule(tmp_path / "nope", image_size=8)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match=r"no images \(\.jpg .*\) found in .*empty"):
        ImageFolderDataModule(tmp_path / "empty", image_size=8)
    save(tmp_path / "file.png", 4, 4)
    with pytest.raises(FileNotFoundError, match=r"file\.png is not a folder"):
        ImageFolderDataModule(tmp_path / "file.png", image_size=8)


@pytest.mark.parametrize(
    ("name", "content"),
    [("bad.jpg", lambda good: b"definitely not a jpeg"), ("cut.png", lambda good: good[:300])],
    ids=["garbage", "truncated"],
)
def test_unreadable_image_names_the_file(tmp_path, name, content):
    save(tmp_path / "good.png", 32, 32)
    (tmp_path / name).write_bytes(content((tmp_path / "good.png").read_bytes()))
    dm = ImageFolderDataModule(tmp_path, image_size=8, val_fraction=0, batch_size=2)
    dm.setup()
    dm.train_set[dm.train_set.files.index(tmp_path / "good.png")]  # the good one still loads
    pattern = rf"cannot read image {tmp_path / name}: .*; remove or replace it"
    with pytest.raises(ValueError, match=pattern):
        next(iter(dm.train_dataloader()))


def test_bad_options(tmp_path):
    save(tmp_path / "a.png", 4, 4)
    with pytest.raises(ValueError, match=r"channels=2"):
        ImageFolderDataModule(tmp_path, 4, channels=2)
    with pytest.raises(ValueError, match=r"val_fraction=1 must be in \[0, 1\)"):
        ImageFolderDataModule(tmp_path, 4, val_fraction=1)
    with pytest.raises(ValueError, match=r"image_size=0"):
        ImageFolderDataModule(tmp_path, 0)
    dm = ImageFolderDataModule(tmp_path, 4, val_fraction=0.5)  # one image: it goes to train
    assert dm.num_val == 0
