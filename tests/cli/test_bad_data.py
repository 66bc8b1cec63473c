"""Bad data through the real ``train.py``/``sample.py``: splits that would train for zero steps or
never validate, every kind of image file the reader refuses (also from a DataLoader worker), and
.npz arrays of the wrong kind. One process per case, all at once (tests/cli/harness.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from flowgen.models import Glow, model_metadata
from tests.cli.harness import Case, check_case, run_cases
from tests.data.image_files import animated, header_only_png

#: An image folder of 16x16 grey images: 3 train (one batch), 1 validation image.
FOLDER = ["data=imagefolder", "data.image_size=16", "data.channels=1", "data.val_fraction=0.25",
          "data.batch_size=3", "model.levels=2"]


def _npz(path: Path, n_train: int = 8, n_test: int = 4, **arrays) -> Path:
    x = np.random.default_rng(0).integers(0, 256, (n_train, 16, 16), dtype=np.uint8)
    np.savez(path, **{"x_train": x, "x_test": x[:n_test], **arrays})
    return path


def _float_tiff_named_png(path: Path) -> None:
    Image.new("F", (16, 16), 0.5).save(path, format="TIFF")  # the extension lies, too


def _truncated(path: Path) -> None:
    Image.new("L", (16, 16), 9).save(path)
    path.write_bytes(path.read_bytes()[:50])


BAD_IMAGES = {  # case -> (file name, how to write it, what the error says after the path)
    "train_image_animated": ("anim.webp", lambda p: animated(p, 16),
                             "it is animated or multi-frame (3 frames)"),
    "train_image_float": ("float.png", _float_tiff_named_png, "its pixels are of PIL mode F"),
    "train_image_too_small": ("small.png", lambda p: Image.new("L", (12, 20)).save(p),
                              "it is 12x20, smaller than the 16x16 it is cropped to"),
    "train_image_empty_file": ("empty.png", lambda p: p.write_bytes(b""),
                               "the file is empty (0 bytes)"),
    "train_image_too_large": ("huge.png", lambda p: header_only_png(p, 10000, 9000),
                              "it is 10000x9000, more pixels than PIL's decompression-bomb limit"),
    "train_image_in_worker": ("cut.png", _truncated, ""),
}


def _fresh_run_dirs(case_folder: Path) -> list[str]:
    return [f"hydra.run.dir={case_folder / 'run'}",
            f"paths.checkpoint_dir={case_folder / 'run' / 'ckpt'}"]


def _image_folder(data: Path, name: str, bad_name: str, write) -> Path:
    folder = data / name
    folder.mkdir()
    for i in range(3):
        Image.new("L", (16, 16), 60 * i).save(folder / f"ok{i}.png")
    write(folder / bad_name)
    return folder


def _glow_ckpt(path: Path) -> Path:
    model = Glow(event_shape=(1, 16, 16), levels=2, steps=1, hidden_channels=4)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "flowgen": model_metadata(model, n_bits=8)}, path)
    return path


def _cases(tmp: Path) -> dict[str, Case]:
    data = tmp / "data"
    data.mkdir()
    cases = {}
    for name, (bad_name, write, reason) in BAD_IMAGES.items():
        folder = _image_folder(data, name, bad_name, write)
        workers = ["data.num_workers=1"] if name.endswith("in_worker") else []
        # found while training, after the run has claimed its folder: a fresh one, not the
        # case's ckpt/ that holds an earlier run (which a new run is refused into)
        cases[name] = Case("train.py", [*FOLDER, f"data.root={folder}", *workers], 2,
                           f"cannot read image {folder / bad_name}: {reason}", own_dirs=False,
                           args_in=_fresh_run_dirs)
    few = _npz(data / "three.npz", n_train=3)
    noval = _image_folder(data, "noval", "ok3.png", lambda p: Image.new("L", (16, 16)).save(p))
    cases["train_zero_steps"] = Case(
        "train.py", ["data=npz", f"data.path={few}"], 2,  # TINY: data.batch_size=4
        f"the x_train of {few} has 3 images, fewer than one batch of data.batch_size=4: "
        f"training would make 0 steps; lower data.batch_size to 3 or add images to x_train")
    cases["train_no_validation_images"] = Case(
        "train.py", [*FOLDER, f"data.root={noval}", "data.val_fraction=0"], 2,
        f"the validation split of {noval} (data.val_fraction=0 of 4 images) has no images")
    npz_cases = {
        "train_npz_float_pixels": (dict(x_test=np.zeros((4, 16, 16), np.float32)),
                                   "x_test has dtype float32, need uint8 pixels 0..255"),
        "train_npz_four_channels": (dict(x_train=np.zeros((8, 16, 16, 4), np.uint8),
                                         x_test=np.zeros((4, 16, 16, 4), np.uint8)),
                                    "x_train images have 4 channels, need 1 (grey) or 3 (RGB)"),
        "train_npz_no_test_images": (dict(x_test=np.zeros((0, 16, 16), np.uint8)),
                                     "x_test holds no images"),
        "train_npz_bad_labels": (dict(y_train=np.array([0, 1, 2, -1, 0, 1, 2, 3])),
                                 "y_train[3] = -1: labels must be whole numbers >= 0"),
    }
    for name, (arrays, message) in npz_cases.items():
        path = _npz(data / f"{name}.npz", **arrays)
        cases[name] = Case("train.py", ["data=npz", f"data.path={path}"], 2, f"{path}: {message}")
    ckpt = _glow_ckpt(data / "glow16.ckpt")
    anim = animated(data / "anim.gif", 16)
    cases["sample_image_animated"] = Case(
        "sample.py", [f"ckpt={ckpt}", "mode=reconstruct", f"images=[{anim}]"], 2,
        f"cannot read image {anim}: it is animated or multi-frame (3 frames); save the one "
        f"frame you want as a still image")
    return cases


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_data")
    return run_cases(_cases(tmp), tmp, shared=tmp / "data")


ROWS = [*BAD_IMAGES, "train_zero_steps", "train_no_validation_images", "train_npz_float_pixels",
        "train_npz_four_channels", "train_npz_no_test_images", "train_npz_bad_labels",
        "sample_image_animated"]


def test_every_case_is_checked(runs):
    assert sorted(runs) == sorted(ROWS)


@pytest.mark.parametrize("name", ROWS)
def test_bad_data_one_line_error_nothing_lost(runs, name):
    check_case(name, runs[name])
