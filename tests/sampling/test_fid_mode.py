"""``sample.py mode=fid``: FID per temperature against the data, with the stand-in extractor
(Inception weights are a local file: refused in one line when not given)."""

from __future__ import annotations

import json
import math

import pytest

from flowgen.sampling import parse_settings, run
from tests.conftest import ROOT
from tests.sampling.test_sample import compose

CKPT = ROOT / "tests" / "fixtures" / "format1" / "glow.ckpt"  # MNIST 32x32, 2 training steps


def test_fid_per_temperature_against_the_data(tmp_path):
    written = run(compose([f"ckpt={CKPT}", "mode=fid", "n=48", "temperature=[0.0,1.0]",
                           "fid_features=standin", "batch_size=16", "progress=false",
                           f"out={tmp_path}"]))
    results = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(results["fid"]) == {"T0.00", "T1.00"} and results["n_real"] == 48
    assert all(math.isfinite(v) and v > 0 for v in results["fid"].values())
    assert results["features"] == "standin" and results["data_from"] == "config"
    assert {p.name for p in written} == {"evaluation.json", "settings.json"}


def test_fid_without_inception_weights_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="inception_weights=<path"):
        parse_settings(compose([f"ckpt={CKPT}", "mode=fid", f"out={tmp_path / 'o'}"]))
    assert not (tmp_path / "o").exists()
