"""FID during training (issue 13, item 5): off by default; on, ``val/fid`` every n validations,
equal to sample.py's FID of the same samples; the Inception without weights refused before
any work."""

from __future__ import annotations

import csv

import pytest
import torch

from flowgen.objectives.fid import StandInFeatures, frechet_distance
from flowgen.training import train
from flowgen.training.fid_monitor import FIDMonitor
from flowgen.training.options import check_train_config
from tests.conftest import compose_train


def fid_rows(tmp_path) -> list[dict]:
    (path,) = (tmp_path / "out").rglob("metrics.csv")
    with open(path) as f:
        return [r for r in csv.DictReader(f) if r.get("val/fid")]


def test_off_by_default(tmp_path):
    cfg = compose_train([], tmp_path)
    assert cfg.callbacks.fid.every_n_validations == 0


def test_every_second_validation_logs_a_finite_fid(tmp_path):
    """4 steps validated every step: FID after validations 2 and 4, nowhere else."""
    train(compose_train(["trainer.val_check_interval=1", "callbacks.fid.every_n_validations=2",
                         "callbacks.fid.features=standin", "callbacks.fid.n=24",
                         "callbacks.fid.batch_size=10", "callbacks.sample_grid=null"],
                        tmp_path))
    rows = fid_rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [2, 4]
    values = [float(r["val/fid"]) for r in rows]
    assert all(v > 0 and v == v for v in values) and values[0] != values[1]


def test_the_value_is_the_fid_of_the_seeded_samples(tmp_path):
    """The callback's number = frechet_distance of the same seeded samples and images."""
    from lightning.pytorch.loggers import CSVLogger

    from flowgen.training.train import build

    cfg = compose_train(["callbacks.fid.every_n_validations=1", "callbacks.fid.n=12",
                         "callbacks.fid.features=standin", "callbacks.fid.batch_size=5"],
                        tmp_path)
    datamodule, module = build(cfg)[:2]
    datamodule.prepare_data()
    datamodule.setup("fit")
    monitor = FIDMonitor(1, n=12, features="standin", batch_size=5, seed=3)

    class Trainer:  # what the hook reads
        sanity_checking, is_global_zero, global_step = False, True, 7
        loggers = [CSVLogger(tmp_path / "log")]

    Trainer.datamodule = datamodule
    monitor.on_validation_epoch_end(Trainer, module)
    Trainer.loggers[0].save()
    with open(next((tmp_path / "log").rglob("metrics.csv"))) as f:
        (row,) = list(csv.DictReader(f))
    real = torch.stack([torch.as_tensor(datamodule.val_set[i][0]) for i in range(12)])
    fake = monitor._samples(module)
    assert float(row["val/fid"]) == pytest.approx(
        frechet_distance([real], [fake], StandInFeatures()), rel=1e-6)


def test_inception_without_weights_is_refused_before_any_work(tmp_path):
    cfg = compose_train(["callbacks.fid.every_n_validations=5"], tmp_path)
    with pytest.raises(ValueError, match="callbacks.fid.inception_weights=<path to weights-"):
        check_train_config(cfg)
    cfg = compose_train(["callbacks.fid.every_n_validations=5",
                         f"callbacks.fid.inception_weights={tmp_path / 'missing.pth'}"], tmp_path)
    with pytest.raises(ValueError, match="missing.pth"):
        check_train_config(cfg)
    for bad in ("callbacks.fid.n=1", "callbacks.fid.features=vgg",
                "callbacks.fid.every_n_validations=-1"):
        with pytest.raises(ValueError, match=bad.split("=")[0]):
            check_train_config(compose_train([bad], tmp_path))
    assert not (tmp_path / "out").exists()
