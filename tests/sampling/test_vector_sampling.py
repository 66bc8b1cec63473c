"""sample.py on vector checkpoints trained here (two moons, a 3-D ``data=npz_vectors`` table):
samples in data units per temperature, the 2-D density picture, the test NLL training reported,
non-finite samples counted, and one line for what a vector model cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from flowgen.config import CONFIG_DIR
from flowgen.data.npz_vectors import CHECKPOINT_KEY
from flowgen.models import load_model
from flowgen.plots import density_panel
from flowgen.sampling import vectors
from flowgen.sampling.grid import sample_images
from flowgen.sampling.run import run
from tests.conftest import compose_train

MEAN, STD = np.array([10.0, 0.0, -3.0]), np.array([0.5, 2.0, 4.0])
TINY = ["model=coupling_mlp", "model.couplings=2", "model.hidden_features=8",
        "callbacks.density_panel=null", "data.batch_size=64"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """name -> (last.ckpt, train()'s metrics) of a few steps on two moons, a 3-D table and a
    2-D one."""
    from flowgen.training import train

    tmp = tmp_path_factory.mktemp("vector_runs")
    x = (MEAN + STD * np.random.default_rng(0).normal(size=(600, 3))).astype(np.float32)
    np.savez(tmp / "table.npz", x_train=x[:500], x_test=x[500:])
    np.savez(tmp / "plane.npz", x_train=x[:500, 1:], x_test=x[500:, 1:])
    data = {"moons": ["data=two_moons", "data.n_train=512", "data.n_val=64", "data.n_test=256"],
            "table": ["data=npz_vectors", f"data.path={tmp / 'table.npz'}"],
            "plane": ["data=npz_vectors", f"data.path={tmp / 'plane.npz'}"]}
    out = {}
    for name, overrides in data.items():
        metrics = train(compose_train([*overrides, *TINY], tmp / name, shrink_model=False))
        out[name] = (Path(metrics["last_checkpoint"]), metrics)
    return out


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("sample", overrides=["device=cpu", "progress=false", *overrides])


def test_two_moons_samples_and_picture(runs, tmp_path):
    ckpt = runs["moons"][0]
    written = run(compose([f"ckpt={ckpt}", "n=300", "temperature=[0.7,1.0]", f"out={tmp_path}"]))
    assert sorted(p.name for p in written) == ["density-T0.70.png", "density-T1.00.png",
                                               "samples-T0.70.npz", "samples-T1.00.npz",
                                               "settings.json"]
    model, _ = load_model(ckpt)
    for tag, t in (("T0.70", 0.7), ("T1.00", 1.0)):
        with np.load(tmp_path / f"samples-{tag}.npz") as f:
            x, finite = f["x"], f["finite"]
        assert x.shape == (300, 2) and x.dtype == np.float64 and finite.all()
        # the toys' samples are the model's own (no standardisation), whatever the batch size
        assert np.array_equal(x, sample_images(model, 300, t, 0, 300).double().numpy())
        with Image.open(tmp_path / f"density-{tag}.png") as picture:
            assert picture.size == (3 * 200 + 2 * 4, 14 + 200)
    record = json.loads((tmp_path / "settings.json").read_text())
    assert record["health"]["samples-T1.00"]["nonfinite"] == 0 and record["n_samples"] == 600
    assert record["data"] == "flowgen.data.vectors.ToyDataModule"
    assert record["data_from"] == "checkpoint" and record["standardised"] is False


def test_table_samples_are_in_data_units(runs, tmp_path):
    """The statistics come from the checkpoint: the data file is not even needed for D != 2."""
    ckpt = runs["table"][0]
    table = Path(runs["table"][1]["last_checkpoint"]).parents[2] / "table.npz"
    table.rename(table.with_suffix(".moved"))
    try:
        written = run(compose([f"ckpt={ckpt}", "n=2000", "temperature=1", "batch_size=500",
                               f"out={tmp_path}"]))
    finally:
        table.with_suffix(".moved").rename(table)
    assert sorted(p.name for p in written) == ["samples-T1.00.npz", "settings.json"]
    stats = torch.load(ckpt, weights_only=True)[CHECKPOINT_KEY]
    model, _ = load_model(ckpt)
    z = sample_images(model, 2000, 1.0, 0, 2000).double()
    with np.load(tmp_path / "samples-T1.00.npz") as f:
        x = f["x"]
    assert np.allclose(x, z.numpy() * stats["std"] + stats["mean"], rtol=0, atol=1e-9)
    # a few steps from the identity: about N(mean, std^2) in the data's units, not N(0, 1)
    assert np.allclose(x.mean(0), MEAN, atol=0.5 * STD.max()) and np.allclose(x.std(0), STD,
                                                                               rtol=0.3)


def test_standardised_2d_picture_is_drawn_in_data_units(runs, tmp_path, monkeypatch):
    """The picture's data are the training rows as stored, and its density is one in the data's
    units: it integrates to 1 over them (the model, a few steps from the identity, is about
    N(mean, std^2); a density of the standardised space would integrate to prod(std) = 8)."""
    drawn = {}

    def spy(data, log_prob, samples, **kwargs):
        drawn.update(data=data, log_prob=log_prob)
        return density_panel(data, log_prob, samples, **kwargs)

    monkeypatch.setattr(vectors, "density_panel", spy)
    written = run(compose([f"ckpt={runs['plane'][0]}", "n=50", f"out={tmp_path}"]))
    assert "density-T0.70.png" in [p.name for p in written]
    with np.load(Path(runs["plane"][1]["last_checkpoint"]).parents[2] / "plane.npz") as f:
        rows = f["x_train"]
    assert {tuple(r) for r in drawn["data"].numpy()} <= {tuple(r) for r in rows}
    lo, hi, h = MEAN[1:] - 6 * STD[1:], MEAN[1:] + 6 * STD[1:], STD[1:] / 20
    axes = [torch.arange(a + s / 2, b, s, dtype=torch.float64)
            for a, b, s in zip(lo, hi, h, strict=True)]
    grid = torch.cartesian_prod(*axes).float()
    mass = drawn["log_prob"](grid).exp().sum().item() * h.prod()
    assert mass == pytest.approx(1, abs=0.05)


@pytest.mark.parametrize("name", ["moons", "table"])
def test_evaluate_gives_the_test_nll_training_reported(runs, tmp_path, name):
    ckpt, metrics = runs[name]
    written = run(compose([f"ckpt={ckpt}", "mode=evaluate", "batch_size=50", f"out={tmp_path}"]))
    assert [p.name for p in written] == ["evaluation.json", "settings.json"]
    result = json.loads((tmp_path / "evaluation.json").read_text())
    assert result["nll"] == pytest.approx(metrics["test/nll"], rel=1e-5, abs=1e-5)
    assert result["n_points"] == (256 if name == "moons" else 100)
    if name == "table":
        assert result["nll_data"] == pytest.approx(metrics["test/nll_data"], rel=1e-5, abs=1e-5)
        assert "entropy" not in result
    else:
        assert result["nll_gap"] == pytest.approx(metrics["test/nll_gap"], rel=1e-4, abs=1e-4)
        assert "nll_data" not in result


def test_non_finite_samples_are_counted_and_flagged(runs, tmp_path, monkeypatch, capsys):
    def overflowing(*args, **kwargs):
        z = sample_images(*args, **kwargs)
        z[0, 1], z[5, 0] = float("nan"), float("inf")
        return z

    monkeypatch.setattr(vectors, "sample_images", overflowing)
    run(compose([f"ckpt={runs['table'][0]}", "n=10", f"out={tmp_path}"]))
    with np.load(tmp_path / "samples-T0.70.npz") as f:
        assert f["finite"].tolist() == [i not in (0, 5) for i in range(10)]
        assert np.isnan(f["x"][0, 1]) and np.isinf(f["x"][5, 0])
    record = json.loads((tmp_path / "settings.json").read_text())
    assert record["nonfinite"] == 2 and record["health"]["samples-T0.70"]["nonfinite"] == 2
    captured = capsys.readouterr()
    assert "samples-T0.70: 2 of 10 samples non-finite" in captured.out
    assert "warning: 2 of 10 samples came out non-finite" in captured.err


@pytest.mark.parametrize("mode", ["interpolate", "reconstruct", "manipulate", "fid"])
def test_image_modes_are_refused_in_one_line(runs, tmp_path, mode):
    extra = {"manipulate": ["attribute=1"], "fid": ["fid_features=standin"]}.get(mode, [])
    with pytest.raises(ValueError) as err:
        run(compose([f"ckpt={runs['moons'][0]}", f"mode={mode}", *extra,
                     f"out={tmp_path / 'out'}"]))
    assert f"mode={mode} is for images" in str(err.value) and "\n" not in str(err.value)
    assert "vector models support mode=grid" in str(err.value) and "mode=evaluate" in str(
        err.value)
    assert not (tmp_path / "out").exists()


def test_standardised_checkpoint_without_statistics_is_refused(runs, tmp_path):
    ckpt = torch.load(runs["table"][0], weights_only=True)
    del ckpt[CHECKPOINT_KEY]
    torch.save(ckpt, tmp_path / "stripped.ckpt")
    with pytest.raises(ValueError, match="trained on standardised data but keeps no statistics"):
        run(compose([f"ckpt={tmp_path / 'stripped.ckpt'}", f"out={tmp_path / 'out'}"]))
    assert not (tmp_path / "out").exists()
