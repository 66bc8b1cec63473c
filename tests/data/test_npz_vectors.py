"""``data=npz_vectors``: users' own tables from an ``.npz``. Standardised with the training rows'
statistics, which the checkpoint keeps (a resumed run keeps them); test NLL in standardised and
data units; every bad file refused in one line, before anything is written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from flowgen.data.npz_vectors import (
    CHECKPOINT_KEY,
    NpzVectorDataModule,
    Standardisation,
    split_validation,
)
from flowgen.models import CouplingMLP
from flowgen.objectives import Density
from tests.cli.harness import Case, check_case, run_cases
from tests.conftest import compose_train

SCALE, SHIFT = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([10.0, 0.0, -3.0, 100.0, 1.0])
#: A coupling MLP small enough to train in a second, as train.py composes it.
SMALL = ["model=coupling_mlp", "model.couplings=2", "model.hidden_features=8",
         "callbacks.density_panel.n_samples=200", "callbacks.density_panel.resolution=16"]


def table(path: Path, n_train: int = 200, n_test: int = 60, dims: int = 5, seed: int = 0,
          **arrays) -> Path:
    """A Gaussian table ``x = shift + scale * e`` of ``dims`` features, float32."""
    rng = np.random.default_rng(seed)
    x = (SHIFT[:dims] + SCALE[:dims] * rng.normal(size=(n_train + n_test, dims))).astype(
        np.float32)
    np.savez(path, **{"x_train": x[:n_train], "x_test": x[n_train:], **arrays})
    return path


def test_standardised_with_the_training_rows_only(tmp_path):
    path = table(tmp_path / "t.npz")
    dm = NpzVectorDataModule(path, val_fraction=0.25, seed=3, batch_size=16)
    assert dm.event_shape == (5,) and dm.rows == {"x_train": 200, "x_test": 60}
    dm.setup()
    with np.load(path) as f:
        x_train, x_test = f["x_train"].astype(np.float64), f["x_test"].astype(np.float64)
    train, val = split_validation(x_train, 0.25, 3)
    assert (len(train), len(val)) == (150, 50) and len(dm.val_set) == 50
    # the validation rows are rows of x_train, drawn by the seed; the rest stay in file order
    assert {tuple(r) for r in val} | {tuple(r) for r in train} == {tuple(r) for r in x_train}
    assert not np.array_equal(split_validation(x_train, 0.25, 4)[1], val)
    mean, std = train.mean(0), train.std(0)
    assert torch.equal(dm.standardisation.mean, torch.from_numpy(mean))
    assert torch.equal(dm.standardisation.std, torch.from_numpy(std))
    assert dm.points("train").dtype == torch.float32
    z = dm.points("train").double()
    assert torch.allclose(z.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(5, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(dm.points("test").double(),
                          torch.from_numpy((x_test - mean) / std), atol=1e-5)
    assert torch.equal(dm.data_points("test", 7), torch.from_numpy(x_test[:7]))
    assert dm.nll_offset() == pytest.approx(np.log(std).sum(), abs=1e-12)
    x, labels = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 5) and x.dtype == torch.float32 and labels.tolist() == [0] * 16


def test_x_val_is_used_when_the_file_has_it(tmp_path):
    val = np.full((7, 5), 2.0, np.float32)
    dm = NpzVectorDataModule(table(tmp_path / "t.npz", x_val=val), val_fraction=0.5)
    dm.setup()
    assert len(dm.train_set) == 200 and torch.equal(dm.data_points("val"),
                                                     torch.from_numpy(val.astype(np.float64)))


def test_nll_in_data_units_is_the_standardised_nll_plus_sum_log_std(tmp_path):
    """At initialisation the coupling MLP is the identity, so the model is N(mean, diag std^2)
    in data units: its NLL there, computed by hand, is test NLL + nll_offset()."""
    dm = NpzVectorDataModule(table(tmp_path / "t.npz"))
    dm.setup()
    nll_std = Density()(CouplingMLP((5,), couplings=2).double(),
                        (dm.points("test").double(), None)).values
    x = dm.data_points("test").numpy()
    mean, std = dm.standardisation.mean.numpy(), dm.standardisation.std.numpy()
    by_hand = (0.5 * ((x - mean) / std) ** 2 + np.log(std) + 0.5 * math.log(2 * math.pi)).sum(1)
    assert np.allclose(nll_std.detach().numpy() + dm.nll_offset(), by_hand, atol=1e-5)


def test_statistics_round_trip_through_the_state_dict(tmp_path, caplog):
    dm = NpzVectorDataModule(table(tmp_path / "a.npz"))
    state = dm.state_dict()
    assert set(state) == {"mean", "std"} and all(isinstance(v, float) for v in state["std"])
    # the file has changed since: a resumed run keeps the checkpoint's units, and says so
    other = NpzVectorDataModule(table(tmp_path / "b.npz", seed=1))
    other.setup()
    other.load_state_dict(state)
    assert other.state_dict() == state and "the file changed" in caplog.text
    x = other.data_points("train")
    assert torch.allclose(other.points("train").double(),
                          (x - torch.tensor(state["mean"])) / torch.tensor(state["std"]),
                          atol=1e-5)
    with pytest.raises(ValueError, match="trained on 5 features, .* has 2"):
        NpzVectorDataModule(table(tmp_path / "c.npz", dims=2)).load_state_dict(state)
    with pytest.raises(ValueError, match="holds no valid statistics"):
        Standardisation.from_state({"mean": [0.0], "std": [0.0]}, "here")


def test_train_end_to_end_in_five_and_two_dimensions(tmp_path):
    from flowgen.training import train

    for dims in (5, 2):
        path = table(tmp_path / f"d{dims}.npz", dims=dims)
        cfg = compose_train(["data=npz_vectors", f"data.path={path}", *SMALL], tmp_path / str(
            dims), shrink_model=False)
        assert cfg.task.metric == "nll"
        metrics = train(cfg)
        assert metrics["step"] == 4 and math.isfinite(metrics["test/nll"])
        with np.load(path) as f:
            train_rows, _ = split_validation(f["x_train"].astype(np.float64), 0.1, 0)
        offset = np.log(train_rows.std(0)).sum()
        assert metrics["test/nll_data"] - metrics["test/nll"] == pytest.approx(offset, abs=1e-9)
        saved = torch.load(metrics["last_checkpoint"], weights_only=True)[CHECKPOINT_KEY]
        assert np.allclose(saved["mean"], train_rows.mean(0), rtol=0, atol=1e-12)
        pictures = list((tmp_path / str(dims) / "out" / "density").glob("*.png"))
        assert bool(pictures) == (dims == 2)


def test_resume_keeps_the_checkpoint_statistics(tmp_path):
    from flowgen.training import train

    path = table(tmp_path / "t.npz")
    first = train(compose_train(["data=npz_vectors", f"data.path={path}", *SMALL],
                                tmp_path, shrink_model=False))
    state = torch.load(first["last_checkpoint"], weights_only=True)[CHECKPOINT_KEY]
    table(path, seed=1)  # the file changes between the jobs
    resumed = train(compose_train(["data=npz_vectors", f"data.path={path}", *SMALL,
                                   "trainer.max_steps=6", "ckpt_path=last"], tmp_path,
                                  shrink_model=False))
    assert resumed["step"] == 6
    assert torch.load(resumed["last_checkpoint"], weights_only=True)[CHECKPOINT_KEY] == state


def _write(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


GOOD = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
BAD_FILES = {  # name -> (arrays, what the one-line error says)
    "missing_test": (dict(x_train=GOOD), "need x_train and x_test"),
    "integer": (dict(x_train=GOOD.astype(np.int64), x_test=GOOD),
                "x_train has dtype int64, need floating-point features"),
    "one_dim": (dict(x_train=GOOD, x_test=GOOD[:, 0]), "x_test has shape (40,), need [N, D]"),
    "other_d": (dict(x_train=GOOD, x_test=GOOD[:, :2]), "x_train has 3 features per row but "
                                                        "x_test has 2"),
    "other_d_val": (dict(x_train=GOOD, x_test=GOOD, x_val=GOOD[:, :1]), "x_val has 1"),
    "nan": (dict(x_train=np.where(np.eye(40, 3) > 0, np.nan, GOOD), x_test=GOOD),
            "x_train has 3 non-finite values (first x_train[0, 0] = nan)"),
    "inf": (dict(x_train=GOOD, x_test=np.where(np.eye(40, 3) > 0, np.inf, GOOD)),
            "x_test has 3 non-finite values"),
    "constant": (dict(x_train=np.c_[GOOD, np.full(40, 7.0)], x_test=np.c_[GOOD, GOOD[:, 0]]),
                 "x_train column(s) [3] are constant"),
    "few_rows": (dict(x_train=GOOD[:1], x_test=GOOD), "too few to standardise"),
    "few_for_batch": (dict(x_train=GOOD, x_test=GOOD), "has 36 points, fewer than one batch of "
                      "data.batch_size=64 for each of 1 process(es): training would make 0 steps; "
                      "give x_train at least 64 rows or lower data.batch_size to 36"),
    "empty_test": (dict(x_train=GOOD, x_test=GOOD[:0]), "has 0 points, fewer than the 1 "
                   "process(es) evaluating it; give x_test at least 1 rows"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_fail_before_training(tmp_path, name):
    """What train() runs before it writes anything: the datamodule, then check_splits."""
    arrays, message = BAD_FILES[name]
    _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError) as err:
        dm = NpzVectorDataModule(tmp_path / "bad.npz", batch_size=64 if name == "few_for_batch"
                                 else 8)
        dm.check_splits()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unreadable_files(tmp_path):
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match="cannot read .* as an .npz archive"):
        NpzVectorDataModule(tmp_path / "corrupt.npz")
    np.savez(tmp_path / "objects.npz", x_train=np.array([{"a": 1}] * 3, dtype=object),
             x_test=GOOD)
    with pytest.raises(ValueError, match="x_train has dtype object, need floating-point"):
        NpzVectorDataModule(tmp_path / "objects.npz")
    with pytest.raises(FileNotFoundError, match="set data.path="):
        NpzVectorDataModule(tmp_path / "absent.npz")


def test_train_py_exits_2_with_one_line_and_loses_nothing(tmp_path):
    """Through the real train.py (one process: ~10 s): a value found after the model is built
    (at the split check, the last check before the run claims its folders) gives exit code 2
    and one ``error:`` line, and every earlier file is kept. The other files fail earlier on the
    same path (``test_bad_files_fail_before_training``)."""
    args = ["data=npz_vectors", "model=coupling_mlp", "model.couplings=1", "trainer.max_steps=1",
            "trainer.accelerator=cpu", "logger=csv", "data.batch_size=4"]
    cases = {}
    for name in ("nan",):
        def prepare(folder: Path, arrays=BAD_FILES[name][0]) -> None:
            _write(folder / "cwd" / "bad.npz", **arrays)
        cases[name] = Case("train.py", [*args, "data.path=bad.npz"], 2, BAD_FILES[name][1],
                           prepare=prepare, tiny=False)
    results = run_cases(cases, tmp_path, parallel=1)
    for name, result in results.items():
        check_case(name, result)
