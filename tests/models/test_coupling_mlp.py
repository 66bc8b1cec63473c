"""The vector model built from the one Coupling: model=coupling_mlp."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen.models import CouplingMLP, build_model, model_metadata


def test_starts_as_the_identity_under_a_standard_normal():
    model = CouplingMLP((2,)).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    expected = -0.5 * (x.pow(2).sum(1) + 2 * math.log(2 * math.pi))
    torch.testing.assert_close(model.log_prob(x), expected, rtol=0, atol=1e-12)


def test_records_its_arguments_and_rebuilds_from_them():
    model = CouplingMLP(event_shape=(3,), couplings=3, hidden_features=8, actnorm=True)
    meta = model_metadata(model, 8)
    assert meta["config"] == {"event_shape": [3], "couplings": 3, "hidden_features": 8,
                              "hidden_layers": 2, "transform": "affine", "actnorm": True,
                              "num_classes": 0, "bins": 8, "tail_bound": 3.0}
    rebuilt = build_model(meta["arch"], meta["config"])
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(4, 3)
    model.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt.log_prob(x), model.log_prob(x), rtol=0, atol=0)


def test_round_trip_sampling_and_labels():
    torch.manual_seed(0)
    model = CouplingMLP((4,), couplings=4, hidden_features=16, num_classes=3).double()
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    x, labels = torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    zs = model.encode(x, labels)
    torch.testing.assert_close(model.decode(zs, labels), x, rtol=0, atol=1e-10)
    assert not torch.allclose(model.log_prob(x, labels), model.log_prob(x, labels.roll(1)))
    samples = model.sample(7, labels[:1].expand(7), temperature=0.5)
    assert samples.shape == (7, 4) and torch.isfinite(samples).all()


def test_refuses_images():
    with pytest.raises(ValueError, match=r"vectors \(D,\).*data=two_moons"):
        CouplingMLP((1, 8, 8))
