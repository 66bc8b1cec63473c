"""Shared test helpers: brute-force checks of the flow contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def perturb_(module: torch.nn.Module, scale: float = 0.2) -> torch.nn.Module:
    """Move every parameter away from its (often identity) initial value, so that the checks
    run on a generic member of the family, not on the identity map."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def brute_force_logabsdet(fn, x: torch.Tensor) -> torch.Tensor:
    """``log|det J|`` per sample of ``fn`` (one sample -> tensor of the same numel) by autograd."""
    out = []
    shape = x.shape[1:]
    for xi in x:
        jac = torch.autograd.functional.jacobian(
            lambda v: fn(v.view(1, *shape)).reshape(-1), xi.reshape(-1))
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)
