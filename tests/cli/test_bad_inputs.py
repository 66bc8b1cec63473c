"""Every bad input through the real ``train.py``/``sample.py``: one ``error:`` line on stderr, a
non-zero exit and nothing that was there before changed (one process per row, all at once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from flowgen.models import Glow, model_metadata
from tests.cli.harness import Case, check_case, run_cases


def _npz(path: Path, size: int, channels: int = 1, n: int = 8) -> Path:
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.savez(path, x_train=x, x_test=x[:4])
    return path


def _glow_ckpt(path: Path, image_size: int = 16, weights_from: Glow | None = None) -> Path:
    """A flowgen checkpoint of a tiny 1-channel Glow (``weights_from``: another model's weights
    under this one's record, i.e. a checkpoint of another architecture)."""
    model = Glow(event_shape=(1, image_size, image_size), levels=2, steps=1, hidden_channels=4)
    weights = (weights_from or model).state_dict()
    torch.save({"state_dict": {f"model.{k}": v for k, v in weights.items()},
                "flowgen": model_metadata(model, n_bits=8)}, path)
    return path


def _cases(tmp: Path) -> dict[str, tuple[str, list[str], int, str]]:
    """name -> (script, overrides, exit code, what the last stderr line contains)."""
    data = tmp / "data"
    data.mkdir()
    npz28 = _npz(data / "x28.npz", 28)
    npz16_rgb = _npz(data / "rgb16.npz", 16, channels=3)
    npz32 = _npz(data / "x32.npz", 32)
    npz16 = _npz(data / "x16.npz", 16)
    images = data / "images"
    images.mkdir()
    for i in range(4):
        Image.new("L", (16, 16), 40 * i).save(images / f"ok{i}.png")
    corrupt = images / "broken.png"
    corrupt.write_bytes((images / "ok1.png").read_bytes()[:40])  # a truncated PNG
    empty = data / "empty"
    empty.mkdir()
    big_png = data / "big.png"
    Image.new("L", (32, 32), 128).save(big_png)

    ckpt = _glow_ckpt(data / "glow16.ckpt")
    wider = Glow(event_shape=(1, 16, 16), levels=2, steps=1, hidden_channels=8)
    other_arch = _glow_ckpt(data / "other_arch.ckpt", weights_from=wider)
    junk = data / "junk.ckpt"
    junk.write_bytes(bytes(range(256)) * 8)
    not_flowgen = data / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, not_flowgen)
    a_file = data / "a_file"
    a_file.write_text("not a folder")

    npz_data = lambda path: ["data=npz", f"data.path={path}"]  # noqa: E731
    return {
        # train.py
        "train_size_not_divisible": ("train.py", [*npz_data(npz28), "model.levels=3"], 2,
                                     "image size 28 is not divisible by 2**levels = 8"),
        "train_channels": ("train.py", [*npz_data(npz16_rgb), "+data.channels=1"], 2,
                           "holds 3-channel images but channels=1 was requested"),
        "train_corrupt_image": ("train.py", ["data=imagefolder", f"data.root={images}",
                                             "data.image_size=16", "data.channels=1",
                                             "data.val_fraction=0.5", "model.levels=2",
                                             "data.batch_size=2"], 2,
                                f"cannot read image {corrupt}"),
        "train_empty_folder": ("train.py", ["data=imagefolder", f"data.root={empty}"], 2,
                               f"no images (.jpg .jpeg .png .bmp .webp) found in {empty}"),
        "train_missing_folder": ("train.py", ["data=imagefolder", f"data.root={tmp / 'nope'}"], 2,
                                 f"image folder {tmp / 'nope'} does not exist"),
        "train_missing_npz": ("train.py", npz_data(tmp / "nope.npz"), 2,
                              f"dataset file not found: {tmp / 'nope.npz'}"),
        "train_unknown_option": ("train.py", ["no_such_option=1"], 1,
                                 "Could not override 'no_such_option'"),
        # sample.py
        "sample_missing_ckpt": ("sample.py", [f"ckpt={tmp / 'nope.ckpt'}"], 2,
                                f"checkpoint not found: {tmp / 'nope.ckpt'}"),
        "sample_not_a_checkpoint": ("sample.py", [f"ckpt={junk}"], 2,
                                    f"{junk} is not a readable flowgen checkpoint"),
        "sample_not_flowgen": ("sample.py", [f"ckpt={not_flowgen}"], 2,
                               f"{not_flowgen} is not a flowgen checkpoint (no 'flowgen' record)"),
        "sample_other_architecture": ("sample.py", [f"ckpt={other_arch}"], 2,
                                      "weights do not fit the recorded architecture glow"),
        "sample_channels": ("sample.py", [f"ckpt={ckpt}", "mode=reconstruct", "indices=[0]",
                                          *npz_data(npz16_rgb)], 2,
                            "the data's images are [3, 16, 16] but the model was trained on "
                            "[1, 16, 16]"),
        "sample_interpolate_other_size": ("sample.py", [f"ckpt={ckpt}", "mode=interpolate",
                                                        "endpoints=data", *npz_data(npz32)], 2,
                                          "the data's images are [1, 32, 32] but the model was "
                                          "trained on [1, 16, 16]"),
        "sample_reconstruct_other_size": ("sample.py", [f"ckpt={ckpt}", "mode=reconstruct",
                                                        f"images=[{big_png}]"], 2,
                                          f"{big_png} is 32x32 but the model takes 16x16 images"),
        "sample_interpolate_files_other_size": ("sample.py", [f"ckpt={ckpt}", "mode=interpolate",
                                                              f"images=[{images / 'ok0.png'},"
                                                              f"{big_png}]"], 2,
                                                f"{big_png} is 32x32 but the model takes 16x16 "
                                                f"images"),
        "sample_attribute_name_on_labels": ("sample.py", [f"ckpt={ckpt}", "mode=manipulate",
                                                          "attribute=Smiling",
                                                          *npz_data(npz16)], 2,
                                            "attribute=Smiling is a name, but this data has "
                                            "class labels only"),
        "sample_temperature_negative": ("sample.py", [f"ckpt={ckpt}", "temperature=-1"], 2,
                                        "temperature must be a finite number >= 0 (typically "
                                        "0.5-1.0), got -1"),
        "sample_temperature_not_number": ("sample.py", [f"ckpt={ckpt}", "temperature=warm"], 2,
                                          "temperature must be a finite number >= 0 (typically "
                                          "0.5-1.0), got 'warm'"),
        "sample_n_zero": ("sample.py", [f"ckpt={ckpt}", "n=0"], 2,
                          "number of samples must be a positive integer, got 0"),
        "sample_n_negative": ("sample.py", [f"ckpt={ckpt}", "n=-3"], 2,
                              "number of samples must be a positive integer, got -3"),
        "sample_out_not_writable": ("sample.py", [f"ckpt={ckpt}", f"out={a_file / 'sub'}"], 2,
                                    f"cannot create the output folder {a_file / 'sub'}"),
        "sample_unknown_option": ("sample.py", [f"ckpt={ckpt}", "no_such_option=1"], 1,
                                  "Could not override 'no_such_option'"),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_inputs")
    cases = {name: Case(script, args, code, message)
             for name, (script, args, code, message) in _cases(tmp).items()}
    # found while training, after the run claimed its folders: a fresh checkpoint folder
    cases["train_corrupt_image"].own_dirs = False
    cases["train_corrupt_image"].args_in = lambda d: [f"hydra.run.dir={d / 'run'}",
                                                      f"paths.checkpoint_dir={d / 'run' / 'ckpt'}"]
    return run_cases(cases, tmp, shared=tmp / "data")


ROWS = [
    "train_size_not_divisible", "train_channels", "train_corrupt_image", "train_empty_folder",
    "train_missing_folder", "train_missing_npz", "train_unknown_option",
    "sample_missing_ckpt", "sample_not_a_checkpoint", "sample_not_flowgen",
    "sample_other_architecture", "sample_channels", "sample_interpolate_other_size",
    "sample_reconstruct_other_size", "sample_interpolate_files_other_size",
    "sample_attribute_name_on_labels", "sample_temperature_negative",
    "sample_temperature_not_number", "sample_n_zero", "sample_n_negative",
    "sample_out_not_writable", "sample_unknown_option"]


def test_every_row_is_tested(runs):
    assert sorted(runs) == sorted(ROWS)


@pytest.mark.parametrize("name", ROWS)
def test_bad_input_one_line_error_nonzero_exit_nothing_lost(runs, name):
    check_case(name, runs[name])
