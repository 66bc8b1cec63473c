"""sample.py on a vector model's checkpoint: one clear line, nothing written."""

from __future__ import annotations

import subprocess
import sys

import torch

from flowgen.models import CouplingMLP
from tests.conftest import ROOT


def test_sample_py_refuses_a_vector_model_with_one_line(tmp_path):
    model = CouplingMLP((2,), couplings=2, hidden_features=4)
    path = tmp_path / "moons.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "flowgen": {"format": 2, "arch": model.arch, "config": model.config,
                            "n_bits": None}}, path)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "sample.py"), f"ckpt={path}", "n=4",
                             "device=cpu", f"out={out}"], capture_output=True, text=True,
                            timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "holds a vector model (coupling_mlp, samples of shape (2,))" in last
    assert "Traceback" not in result.stderr and not out.exists()
