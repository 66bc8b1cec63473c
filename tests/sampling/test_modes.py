"""``sample.py`` modes reconstruct, manipulate and evaluate, and the grid's per-level options."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from flowgen.models import load_model
from flowgen.sampling import load_checkpoint, parse_settings, run
from flowgen.sampling.edit import attribute_direction, manipulate, reconstruct
from flowgen.sampling.interpolate import load_val_images, load_val_set
from flowgen.training import FlowModule, train
from tests.conftest import compose_train
from tests.sampling.test_sample import ckpt, compose, grid_size  # noqa: F401 (fixture)

CELL = 34  # make_grid: a 32x32 image plus 2 pixels of padding


def cell(png, row: int, col: int) -> np.ndarray:
    """One image of a saved grid (grey)."""
    with Image.open(png) as im:
        a = np.asarray(im.convert("L"))
    return a[2 + row * CELL:2 + row * CELL + 32, 2 + col * CELL:2 + col * CELL + 32]


def test_reconstruct_indices_grid_and_error(ckpt, tmp_path):  # noqa: F811
    written = run(compose([f"ckpt={ckpt}", "mode=reconstruct", "indices=[0,3,5]",
                           f"out={tmp_path}"]))
    assert [p.name for p in written] == ["reconstruction-data-0-3-5.png", "settings.json"]
    with Image.open(written[0]) as im:
        assert im.size == grid_size(6, nrow=3)  # originals row, reconstructions row
    settings = json.loads(written[-1].read_text())
    assert settings["mode"] == "reconstruct" and settings["indices"] == [0, 3, 5]
    assert settings["max_abs_error"] < 1e-4 and len(settings["max_abs_error_per_image"]) == 3
    for col in range(3):  # the reconstruction shows the original
        diff = cell(written[0], 0, col).astype(int) - cell(written[0], 1, col).astype(int)
        assert np.abs(diff).max() <= 1


def test_reconstruct_image_files_converted_and_sizes_checked(ckpt, tmp_path):  # noqa: F811
    pixels = load_val_images(compose([f"ckpt={ckpt}"]).data, [2], (1, 32, 32))
    grey = Image.fromarray(pixels[0, 0].numpy())
    grey.save(tmp_path / "grey.png")
    grey.convert("RGB").save(tmp_path / "rgb.png")  # converted back to the model's 1 channel
    written = run(compose([f"ckpt={ckpt}", "mode=reconstruct",
                           f"images=[{tmp_path / 'grey.png'},{tmp_path / 'rgb.png'}]",
                           f"out={tmp_path / 'out'}"]))
    settings = json.loads(written[-1].read_text())
    assert settings["max_abs_error"] < 1e-4 and "indices" not in settings
    assert np.array_equal(cell(written[0], 0, 0), pixels[0, 0].numpy())
    assert np.array_equal(cell(written[0], 0, 1), pixels[0, 0].numpy())
    grey.resize((28, 28)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match=r"small.png is 28x28 but the model takes 32x32"):
        run(compose([f"ckpt={ckpt}", "mode=reconstruct", f"images=[{tmp_path / 'small.png'}]",
                     f"out={tmp_path / 'bad'}"]))
    with pytest.raises(FileNotFoundError, match="image not found"):
        run(compose([f"ckpt={ckpt}", "mode=reconstruct", f"images=[{tmp_path / 'no.png'}]",
                     f"out={tmp_path / 'bad'}"]))
    assert not (tmp_path / "bad").exists()


def test_manipulate_grid_rows_by_alphas_and_alpha_zero_is_the_reconstruction(ckpt, tmp_path):  # noqa: F811, E501
    cfg = compose([f"ckpt={ckpt}", "mode=manipulate", "attribute=3", "indices=[0,1]",
                   "max_images=200", "batch_size=50", f"out={tmp_path / 'm'}"])
    written = run(cfg)
    assert [p.name for p in written] == ["manipulate-attribute3-data-0-1.png", "settings.json"]
    with Image.open(written[0]) as im:
        assert im.size == grid_size(2 * 5, nrow=5)  # one row per image, one column per alpha
    settings = json.loads(written[-1].read_text())
    assert settings["alphas"] == [-1, -0.5, 0, 0.5, 1] and settings["attribute"] == 3
    assert settings["images_with_attribute"] + settings["images_without_attribute"] == 200
    assert settings["images_with_attribute"] > 0

    model, meta = load_checkpoint(parse_settings(cfg))
    val = load_val_set(cfg.data)
    pixels = load_val_images(cfg.data, [0, 1], model.in_shape, val)
    direction, _, _ = attribute_direction(model, val, 3, 8, max_images=200, batch_size=50)
    edits = manipulate(model, pixels, direction, [-1, 0, 1], 8).reshape(2, 3, 1, 32, 32)
    _, recon = reconstruct(model, pixels, 8)
    torch.testing.assert_close(edits[:, 1], recon, rtol=0, atol=1e-5)
    assert (edits[:, 2] - recon).abs().max() > 1e-2  # the edit does change the picture
    rec = run(compose([f"ckpt={ckpt}", "mode=reconstruct", "indices=[0,1]",
                       f"out={tmp_path / 'r'}"]))[0]
    for row in range(2):  # the PNGs agree too: column alpha=0 == the reconstructions row
        diff = cell(written[0], row, 2).astype(int) - cell(rec, 1, row).astype(int)
        assert np.abs(diff).max() <= 1


def test_manipulate_settings_fail_before_anything_is_written(ckpt, tmp_path):  # noqa: F811
    for args, message in [(["attribute=null"], "attribute must be a class label"),
                          (["attribute=3", "alphas=[]"], "alphas must be a list"),
                          (["attribute=42"], "none of the first 1000 validation images has "
                                             "label 42")]:
        with pytest.raises(ValueError, match=message):
            run(compose([f"ckpt={ckpt}", "mode=manipulate", *args, f"out={tmp_path / 'o'}"]))
        assert not (tmp_path / "o").exists()


def test_grid_level_temperatures_and_rows_layout_same_seed_same_bytes(ckpt, tmp_path):  # noqa: F811
    def grid(name: str, *args: str) -> bytes:
        written = run(compose([f"ckpt={ckpt}", "n=4", "temperature=[0.5,1.0]",
                               f"out={tmp_path / name}", *args]))
        return written[0].read_bytes()

    levels = ["level_temperatures=[1.0,0.8,0.6]", "layout=rows"]
    first = grid("a", *levels)
    assert grid("b", *levels) == first
    assert grid("c", *levels, "seed=1") != first
    assert grid("d", "layout=rows") != first  # the per-level factors do change the samples
    with Image.open(tmp_path / "a" / "grid-temperatures.png") as im:
        assert im.size == grid_size(8, nrow=4)  # one row of n per temperature
    # factors of 1 change nothing: the same bytes as the plain per-temperature grid
    assert grid("e", "level_temperatures=[1,1,1]") == grid("f")
    settings = json.loads((tmp_path / "a" / "settings.json").read_text())
    assert settings["level_temperatures"] == [1.0, 0.8, 0.6] and settings["layout"] == "rows"
    with pytest.raises(ValueError, match="level_temperatures has 2 values but the checkpoint "
                                         "has 3 levels"):
        grid("g", "level_temperatures=[1.0,0.8]")
    with pytest.raises(ValueError, match="level_temperatures must be a list of finite numbers"):
        grid("h", "level_temperatures=[1.0,-1,1]")
    assert not (tmp_path / "g").exists() and not (tmp_path / "h").exists()


def test_evaluate_equals_lightning_validation_bpd(tmp_path):
    """A trained tiny model: ``mode=evaluate seed=s`` == ``torch.manual_seed(s)`` then
    ``Trainer.validate`` (same images, same batches, same dequantisation noise)."""
    metrics = train(compose_train(["data.batch_size=16"], tmp_path))
    assert metrics["step"] == 4
    path = tmp_path / "ckpt" / "last.ckpt"
    model, meta = load_model(path)
    from hydra.utils import instantiate

    datamodule = instantiate(compose_train(["data.batch_size=16"], tmp_path).data)
    results = {}
    for seed in (7, 8):
        torch.manual_seed(seed)
        trainer = L.Trainer(accelerator="cpu", logger=False, limit_val_batches=2,
                            enable_progress_bar=False, enable_model_summary=False)
        logged = trainer.validate(FlowModule(model, n_bits=meta["n_bits"]),
                                  datamodule=datamodule, verbose=False)[0]["val/bpd"]
        torch.manual_seed(0)  # evaluate does not depend on the global RNG
        written = run(compose([f"ckpt={path}", "mode=evaluate", f"seed={seed}", "batch_size=16",
                               "limit_batches=2", f"out={tmp_path / f'eval{seed}'}"]))
        assert [p.name for p in written] == ["evaluation.json", "settings.json"]
        result = json.loads(written[0].read_text())
        assert result["n_images"] == 32 and result["seed"] == seed
        # acceptance: 1e-4; the two agree to float rounding (a noise stream off by the loader's
        # base-seed draw already differs by ~3e-5 here)
        assert abs(result["bpd"] - logged) < 1e-5, (seed, result["bpd"], logged)
        results[seed] = result["bpd"]
    assert results[7] != results[8]  # the seed does pick the noise


def test_evaluate_with_noise_seed_equals_a_val_noise_seed_run_at_any_batch_size(tmp_path):
    """A run trained with val_noise_seed=k logs val/bpd with fixed noise: mode=evaluate
    noise_seed=k reproduces it, whatever the evaluation batch size."""
    metrics = train(compose_train(["data.batch_size=16", "val_noise_seed=5",
                                   "trainer.limit_val_batches=2"], tmp_path))
    path = tmp_path / "ckpt" / "last.ckpt"
    model, meta = load_model(path)
    from hydra.utils import instantiate

    datamodule = instantiate(compose_train(["data.batch_size=16"], tmp_path).data)
    trainer = L.Trainer(accelerator="cpu", logger=False, limit_val_batches=2,
                        enable_progress_bar=False, enable_model_summary=False)
    logged = trainer.validate(FlowModule(model, n_bits=meta["n_bits"], val_noise_seed=5),
                              datamodule=datamodule, verbose=False)[0]["val/bpd"]
    assert metrics["step"] == 4
    values = []
    for batch_size, limit in ((16, 2), (8, 4)):
        written = run(compose([f"ckpt={path}", "mode=evaluate", "noise_seed=5",
                               f"batch_size={batch_size}", f"limit_batches={limit}",
                               f"out={tmp_path / f'eval{batch_size}'}"]))
        result = json.loads(written[0].read_text())
        assert result["noise_seed"] == 5 and result["n_images"] == 32
        values.append(result["bpd"])
    assert abs(values[0] - logged) < 1e-5 and abs(values[1] - logged) < 1e-5
    other = run(compose([f"ckpt={path}", "mode=evaluate", "noise_seed=6", "batch_size=16",
                         "limit_batches=2", f"out={tmp_path / 'eval-other'}"]))
    assert json.loads(other[0].read_text())["bpd"] != values[0]  # the seed picks the noise
