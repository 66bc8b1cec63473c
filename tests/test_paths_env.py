"""Writable paths from the environment (a read-only image under Apptainer): FLOWGEN_HOME for
checkpoints and outputs, FLOWGEN_DATA_DIR for datasets; the embedded data stays in the checkout."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from flowgen.config import CONFIG_DIR, PROJECT_ROOT


def _paths(overrides=()):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["run_name=r", *overrides])
    return cfg.paths.root_dir, cfg.paths.checkpoint_dir, cfg.paths.data_dir, cfg.data.path


def test_defaults_are_the_checkout(monkeypatch):
    monkeypatch.delenv("FLOWGEN_HOME", raising=False)
    monkeypatch.delenv("FLOWGEN_DATA_DIR", raising=False)
    root, ckpt, data, embedded = _paths()
    assert (root, ckpt, data) == (str(PROJECT_ROOT), f"{PROJECT_ROOT}/checkpoints/r",
                                  f"{PROJECT_ROOT}/data")
    assert embedded == f"{PROJECT_ROOT}/data/mnist5k.npz"


def test_environment_moves_what_is_written(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLOWGEN_DATA_DIR", str(tmp_path / "datasets"))
    root, ckpt, data, embedded = _paths()
    assert (root, ckpt, data) == (str(tmp_path / "home"), str(tmp_path / "home/checkpoints/r"),
                                  str(tmp_path / "datasets"))
    assert embedded == f"{PROJECT_ROOT}/data/mnist5k.npz"  # read-only is fine
