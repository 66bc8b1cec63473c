"""A checkpoint from someone else must not be able to run code: not in sample.py, not on resume.

Checkpoints are read with ``torch.load(weights_only=True)`` and models are rebuilt from the
allow-listed registry, never from a class path stored in the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowgen.models import Glow, load_model, model_metadata
from flowgen.training import train
from tests.conftest import ROOT, compose_train


class RunsCode:
    """Pickles to a call of ``os.system``: loading it without weights_only would run it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def tiny_checkpoint(path: Path, **extra) -> Path:
    model = Glow(event_shape=(1, 32, 32), levels=3, steps=1, hidden_channels=4)
    ckpt = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "flowgen": model_metadata(model, n_bits=8), **extra}
    torch.save(ckpt, path)
    return path


def test_a_pickle_that_runs_code_is_refused_by_load_model(tmp_path):
    marker = tmp_path / "pwned"
    path = tiny_checkpoint(tmp_path / "evil.ckpt", payload=RunsCode(marker))
    with pytest.raises(ValueError, match="not a readable flowgen checkpoint"):
        load_model(path)
    assert not marker.exists()


def test_a_pickle_that_runs_code_is_refused_by_sample_py(tmp_path):
    marker = tmp_path / "pwned"
    path = tiny_checkpoint(tmp_path / "evil.ckpt", payload=RunsCode(marker))
    out = subprocess.run([sys.executable, "sample.py", f"ckpt={path}", f"out={tmp_path / 'o'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "not a readable flowgen checkpoint" in out.stderr
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_a_pickle_that_runs_code_is_refused_on_resume(tmp_path):
    marker = tmp_path / "pwned"
    path = tiny_checkpoint(tmp_path / "evil.ckpt", payload=RunsCode(marker))
    cfg = compose_train([f"ckpt_path={path}"], tmp_path)
    with pytest.raises(ValueError, match="not a readable flowgen checkpoint") as err:
        train(cfg)
    assert "weights_only=False" not in str(err.value)  # never advise running the file's code
    assert not marker.exists()


@pytest.mark.parametrize("record, message", [
    ({"arch": "os.system", "config": {}}, "unknown architecture 'os.system'"),
    ({"arch": "glow", "config": {"_target_": "os.system", "in_channels": 1}},
     "does not fit architecture 'glow'"),
    ({"arch": "glow", "config": {"in_channels": ["not", "plain"]}}, "plain values"),
])
def test_a_stored_config_never_names_what_gets_built(tmp_path, record, message):
    path = tmp_path / "odd.ckpt"
    torch.save({"state_dict": {}, "flowgen": {"format": 1, "n_bits": 8, **record}}, path)
    with pytest.raises(ValueError, match=message):
        load_model(path)
