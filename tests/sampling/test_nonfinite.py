"""Broken samples are never silent: every picture mode counts non-finite and out-of-range
samples (output, settings.json), draws non-finite ones as red tiles, a non-finite bits/dim is a
one-line error, and the training sample grid logs the fraction."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from PIL import Image

from flowgen.diagnostics import display_pixels, sample_health
from flowgen.flows import ActNorm, LearnedPrior
from flowgen.models import Glow, model_metadata
from flowgen.sampling import run, sample_images
from flowgen.training import FlowModule, SampleGrid
from tests.cli.harness import Case, check_case, run_cases
from tests.sampling.test_sample import compose


def planted_glow(top_log_scale: float = 0.0, first_actnorm_log_scale: float = 0.0) -> Glow:
    """A tiny initialised Glow with planted weights: the top prior's log-scale (100: its inverse
    multiplies by e^100 = inf in float32, so every decoded sample is non-finite; 3: a
    finite x20 that pushes samples out of range) and the first ActNorm's (100: the forward
    pass, hence the bits/dim, overflows)."""
    torch.manual_seed(0)
    model = Glow(event_shape=(1, 32, 32), levels=3, steps=1, hidden_channels=8)
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 1, 32, 32) - 0.5)  # initialises ActNorm
        next(m for m in model.modules() if isinstance(m, LearnedPrior)).prior.log_scale.fill_(
            top_log_scale)
        next(m for m in model.modules() if isinstance(m, ActNorm)).log_scale.fill_(
            first_actnorm_log_scale)
    return model.eval()


def save_ckpt(model: Glow, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "flowgen": model_metadata(model, n_bits=8)}, path)
    return path


def test_counts_and_red_tiles_on_a_crafted_batch():
    x = torch.zeros(8, 1, 4, 4)
    x[0, 0, 1, 1] = float("nan")
    x[1, 0, 0, 0] = float("inf")
    x[2, 0, 3, 3] = -float("inf")
    x[3, 0, 2, 2] = 0.9   # out of range
    x[4, 0, 0, 1] = -0.7  # out of range
    x[5, 0, 1, 0] = 0.55  # within the tolerance: an overshoot of a few pixel levels
    health = sample_health(x)
    assert (health.n_samples, health.nonfinite, health.out_of_range) == (8, 3, 2)
    pixels, again = display_pixels(x, n_bits=8)
    assert again == health
    assert pixels.shape == (8, 3, 4, 4)  # greyscale made RGB so that red can show
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 4, 4)
    for i in range(8):
        is_red = torch.equal(pixels[i], red)
        assert is_red == (i < 3), i
    torch.testing.assert_close(pixels[6], torch.full((3, 4, 4), 128 / 255))  # grey stays grey
    clean, ok = display_pixels(x[3:], n_bits=8)
    assert clean.shape == (5, 1, 4, 4) and ok.nonfinite == 0


def test_every_picture_mode_counts_marks_and_records_broken_samples(tmp_path, capsys):
    ckpt = save_ckpt(planted_glow(top_log_scale=100.0), tmp_path / "broken" / "last.ckpt")
    runs = {
        "grid": ["temperature=[0.5,1.0]", "n=6"],
        "interpolate": ["mode=interpolate", "steps=3", "temperature=1.0"],
        "reconstruct": ["mode=reconstruct", "indices=[0,1,2]"],
        "manipulate": ["mode=manipulate", "attribute=3", "indices=[0]", "max_images=50",
                       "alphas=[0,1]"],
    }
    expected = {"grid": {"grid-T0.50": (6, 6), "grid-T1.00": (6, 6)},
                "interpolate": {"interpolation-T1.00": (3, 3)},
                "reconstruct": {"reconstruction-data-0-1-2": (3, 3)},
                "manipulate": {"manipulate-attribute3-data-0": (2, 2)}}
    for mode, args in runs.items():
        out = tmp_path / mode
        run(compose([f"ckpt={ckpt}", *args, f"out={out}", "progress=false"]))
        captured = capsys.readouterr()
        record = json.loads((out / "settings.json").read_text())
        got = {k: (h["n_samples"], h["nonfinite"]) for k, h in record["health"].items()}
        assert got == expected[mode], mode
        assert record["nonfinite"] == sum(b for _, b in expected[mode].values())
        assert record["n_samples"] == sum(n for n, _ in expected[mode].values())
        for stem, (n, bad) in expected[mode].items():
            assert f"{stem}: {bad} of {n} images non-finite" in captured.out
        assert "warning:" in captured.err and "non-finite" in captured.err
    with Image.open(tmp_path / "grid" / "grid-T1.00.png") as im:
        tile = np.asarray(im.convert("RGB"))[2:34, 2:34]
    assert (tile == [255, 0, 0]).all()  # a solid red tile, not a plausible dark image


def test_out_of_range_count_is_that_of_the_decoded_samples(tmp_path, capsys):
    model = planted_glow(top_log_scale=3.0)
    ckpt = save_ckpt(model, tmp_path / "loud" / "last.ckpt")
    run(compose([f"ckpt={ckpt}", "n=32", "temperature=1.0", f"out={tmp_path / 'o'}"]))
    record = json.loads((tmp_path / "o" / "settings.json").read_text())
    samples = sample_images(model, 32, 1.0, seed=0)
    outside = int((samples.flatten(1).abs().amax(1) > 0.6).sum())
    assert 0 < outside == record["out_of_range"] and record["nonfinite"] == 0
    assert f"0 of 32 images non-finite, {outside} out of range" in capsys.readouterr().out


def test_a_nonfinite_bpd_is_a_one_line_error_and_nothing_is_written(tmp_path):
    data = tmp_path / "shared"
    ckpt = save_ckpt(planted_glow(first_actnorm_log_scale=100.0), data / "overflow.ckpt")
    args = [f"ckpt={ckpt}", "mode=evaluate", "limit_batches=1", "batch_size=8", "progress=false"]
    cases = {"evaluate_nan": Case("sample.py", args, 2, "came out nan")}
    for name, result in run_cases(cases, tmp_path / "cases", shared=data).items():
        check_case(name, result)
    assert not list((tmp_path / "cases").rglob("evaluation.json"))


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.randint(0, 256, (1, 32, 32), dtype=torch.uint8), 0


@pytest.mark.parametrize("top_log_scale, fraction", [(100.0, 1.0), (0.0, 0.0)])
def test_training_sample_grid_logs_the_nonfinite_fraction(tmp_path, top_log_scale, fraction):
    module = FlowModule(planted_glow(top_log_scale=top_log_scale))
    trainer = L.Trainer(accelerator="cpu", logger=CSVLogger(tmp_path, name="", version=""),
                        callbacks=[SampleGrid(n=4, dirpath=str(tmp_path / "samples"),
                                              interpolation_steps=3)],
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(module, torch.utils.data.DataLoader(_Images(), batch_size=8),
                     verbose=False)
    with open(tmp_path / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/nonfinite_samples")]
    assert [float(r["val/nonfinite_samples"]) for r in rows] == [fraction]
    with Image.open(tmp_path / "samples" / "step0000000.png") as im:
        tile = np.asarray(im.convert("RGB"))[1:33, 1:33].astype(int)  # padding 1
    red = (tile == [255, 0, 0]).all()
    grey = (tile[..., 0] == tile[..., 1]).all() and (tile[..., 1] == tile[..., 2]).all()
    assert (red, grey) == ((True, False) if fraction else (False, True))
