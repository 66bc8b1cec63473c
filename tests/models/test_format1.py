"""Checkpoints written before the engine of issue 12 (format 1) still load, compute what they
computed then, and sample: tests/fixtures/format1/ holds four, with the numbers that code gave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowgen.models import FlowModel, load_model
from flowgen.models.upgrade import upgrade_config, upgrade_weights
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "format1"
REFERENCE = torch.load(FIXTURES / "reference.pt", weights_only=True)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_format1_checkpoint_gives_the_numbers_it_gave(name):
    ref = REFERENCE[name]
    model, meta = load_model(FIXTURES / f"{name}.ckpt")
    assert isinstance(model, FlowModel) and meta["format"] == 1
    model = model.double()
    with torch.no_grad():
        log_prob = model.log_prob(ref["x"].double(), ref["cond"])
        decoded = model.decode([z.double() for z in ref["zs"]], ref["cond"])
    # the references are float32: agreement to float32 rounding of values ~1e3 and ~1
    torch.testing.assert_close(log_prob, ref["log_prob"].double(), rtol=1e-6, atol=1e-3)
    torch.testing.assert_close(decoded, ref["decoded"].double(), rtol=0, atol=1e-5)


def test_format1_records_are_upgraded():
    old = {"in_channels": 1, "image_size": 28, "levels": 2, "memory": "invertible"}
    assert upgrade_config(old, 1) == {"levels": 2, "event_shape": [1, 28, 28]}
    weights = {"model.levels.0.flows.1.bias": 1, "model.top_prior.mean": 2,
               "model.classifier.weight": 3, "other": 4}
    assert upgrade_weights(weights, 1) == {
        "model.transform.levels.0.flows.1.bias": 1, "model.transform.top.mean": 2,
        "model.head.weight": 3, "other": 4}
    assert upgrade_weights(weights, 2) is weights


def test_sample_py_samples_a_format1_checkpoint(tmp_path: Path):
    out = tmp_path / "grid"
    result = subprocess.run(
        [sys.executable, str(ROOT / "sample.py"), f"ckpt={FIXTURES / 'glow.ckpt'}", "n=4",
         "device=cpu", f"out={out}"], capture_output=True, text=True, timeout=300,
        env={"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(out.glob("*.png"))
