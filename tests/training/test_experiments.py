"""Every paper setup in ``configs/experiment/`` composes and runs ``fast_dev_run``: one training
and one validation batch through the experiment's own model, optimiser and settings.

The data is swapped for a tiny ``.npz`` of the experiment's image shape (the dataset modules are
tested on their real on-disk formats in ``tests/data``), so nothing downloads."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate

from flowgen.config import CONFIG_DIR
from flowgen.training import train
from tests.conftest import compose_train

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
#: No sample grid here: it would take 3,072 sequential MADE passes per layer (an hour on a CPU).
NO_GRID = {"maf_cifar10"}
#: A minute on a CPU: MAF (10) on 3,072 pixels holds 230M weights.
SLOW = {"maf_cifar10"}


def test_experiments_exist():
    assert {"glow_cifar10", "glow_cifar10_conditional", "glow_mnist", "glow_celeba64",
            "realnvp_cifar10", "nice_mnist", "nsf_toy", "maf_toy", "glow_spline_cifar10",
            "maf_mnist", "maf_cifar10"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in EXPERIMENTS])
def test_experiment_fast_dev_run(name, tmp_path):
    reference = compose_train([f"experiment={name}"], tmp_path, shrink_model=False)
    if reference.data._target_.endswith("ToyDataModule"):
        return _toy_fast_dev_run(name, reference, tmp_path)
    data = instantiate({**reference.data, "download": False}) if "root" in reference.data \
        else instantiate(reference.data)
    c, s = data.channels, data.image_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, s, s, c) if c > 1 else (4, s, s), dtype=np.uint8)
    labels = np.arange(4) % 10
    np.savez(tmp_path / "tiny.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)
    cfg = compose_train([f"experiment={name}", "data=npz", f"data.path={tmp_path / 'tiny.npz'}",
                         "data.batch_size=2", "data.image_size=null", "+trainer.fast_dev_run=true",
                         f"paths.output_dir={tmp_path / 'out'}",
                         f"paths.checkpoint_dir={tmp_path / 'ckpt'}",
                         "callbacks.sample_grid=null" if name in NO_GRID
                         else "callbacks.sample_grid.n=4"], tmp_path, shrink_model=False)
    assert cfg.model == reference.model and cfg.optim == reference.optim
    metrics = train(cfg)
    assert np.isfinite(metrics["train/bpd"]) and np.isfinite(metrics["val/bpd"])


def _toy_fast_dev_run(name, reference, tmp_path):
    """A 2-D toy experiment on its own data (drawn, not downloaded), a few points of it."""
    cfg = compose_train([f"experiment={name}", "data.n_train=8", "data.n_val=4", "data.n_test=4",
                         "data.batch_size=4", "+trainer.fast_dev_run=true",
                         f"paths.output_dir={tmp_path / 'out'}",
                         f"paths.checkpoint_dir={tmp_path / 'ckpt'}",
                         "callbacks.density_panel.n_samples=16",
                         "callbacks.density_panel.resolution=8"], tmp_path, shrink_model=False)
    assert cfg.model == reference.model and cfg.optim == reference.optim
    assert cfg.data.name == reference.data.name
    metrics = train(cfg)
    assert np.isfinite(metrics["train/nll"]) and np.isfinite(metrics["val/nll"])
