"""Every model against brute force, in one parametrised check: latent shapes, the round trip,
the log-determinant against ``torch.autograd.functional.jacobian`` and ``log_prob`` against the
prior's own density, in float64 on small inputs, weights perturbed from their initial values."""

from __future__ import annotations

import pytest
import torch

from flowgen.data import bits_per_dim, preprocess
from flowgen.models import Glow
from flowgen.models.nice import NICE
from flowgen.models.realnvp import RealNVP
from tests.conftest import brute_force_logabsdet, flat, trained_like

MODELS = {
    "glow-4x4-grey": (Glow, dict(event_shape=(1, 4, 4), levels=2, steps=2,
                                 hidden_channels=8)),
    "glow-4x4-grey-bounded-scale": (Glow, dict(event_shape=(1, 4, 4), levels=2, steps=2,
                                               hidden_channels=8, coupling_scale="bounded",
                                               split_scale="bounded")),
    "glow-8x8-rgb-additive": (Glow, dict(event_shape=(3, 8, 8), levels=2, steps=1,
                                         hidden_channels=8, coupling="additive")),
    "glow-8x8-grey-plainconv": (Glow, dict(event_shape=(1, 8, 8), levels=3, steps=2,
                                           hidden_channels=8, lu=False)),
    "realnvp-4x4-grey": (RealNVP, dict(event_shape=(1, 4, 4), levels=2,
                                       hidden_channels=8, res_blocks=1)),
    "realnvp-4x4-rgb-actnorm-learned": (RealNVP, dict(event_shape=(3, 4, 4), levels=2,
                                                      hidden_channels=8, res_blocks=1,
                                                      norm="actnorm", prior="learned")),
    "realnvp-8x8-grey-3-levels": (RealNVP, dict(event_shape=(1, 8, 8), levels=3,
                                                hidden_channels=8, res_blocks=2)),
    "nice-4x4-grey-logistic": (NICE, dict(event_shape=(1, 4, 4), couplings=4,
                                          hidden_features=16, hidden_layers=2)),
    "nice-3x3-rgb-gaussian": (NICE, dict(event_shape=(3, 3, 3), couplings=3,
                                         hidden_features=16, hidden_layers=1,
                                         prior="gaussian")),
    "nice-8x8-grey-logistic": (NICE, dict(event_shape=(1, 8, 8), couplings=4,
                                          hidden_features=16, hidden_layers=2)),
}


def fit_bits_per_dim(model, pixels: torch.Tensor, steps: int) -> list[float]:
    """``steps`` Adam steps (lr 1e-3) of ``model`` on uint8 ``pixels`` in training mode, each
    loss checked finite; the bits/dim of every step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps):
        bpd = bits_per_dim(model.log_prob(preprocess(pixels)), model.num_dims).mean()
        assert torch.isfinite(bpd)
        optimizer.zero_grad()
        bpd.backward()
        optimizer.step()
        losses.append(bpd.item())
    return losses


def prior_log_density(model, zs: list[torch.Tensor]) -> torch.Tensor:
    """The latents' log-density, written out here rather than taken from the model."""
    z = flat(zs)
    if model.config.get("prior") == "logistic":  # NICE: log(e^-z / (1 + e^-z)^2)
        return (-z - 2 * torch.log1p(torch.exp(-z))).sum(1)
    return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)


@pytest.mark.parametrize("name", MODELS)
def test_round_trip_and_latent_shapes(name):
    model, x = trained_like(*MODELS[name])
    zs, logdet = model(x)
    assert [tuple(z.shape[1:]) for z in zs] == model.latent_shapes
    assert flat(zs).shape[1] == model.num_dims
    x_back, logdet_inv = model.inverse(zs)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros_like(logdet), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_logdet_and_log_prob_match_brute_force(name):
    model, x = trained_like(*MODELS[name])
    zs, logdet = model(x[:2])
    expected = brute_force_logabsdet(lambda v: flat(model(v)[0]), x[:2])
    torch.testing.assert_close(logdet, expected, rtol=0, atol=1e-8)
    torch.testing.assert_close(model.log_prob(x[:2]), prior_log_density(model, zs) + expected,
                               rtol=0, atol=1e-8)


TRAINABLE = {
    "glow": (Glow, dict(event_shape=(3, 8, 8), levels=2, steps=2, hidden_channels=8)),
    "realnvp": (RealNVP, dict(event_shape=(3, 8, 8), levels=2, hidden_channels=8,
                              res_blocks=1)),
    "nice": (NICE, dict(event_shape=(1, 8, 8), hidden_features=32, hidden_layers=2)),
}


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_few_adam_steps_lower_the_bpd_without_nans(name):
    cls, config = TRAINABLE[name]
    model = cls(**config)
    pixels = torch.randint(0, 256, (16, config["event_shape"][0], 8, 8), dtype=torch.uint8)
    losses = fit_bits_per_dim(model, pixels, 20)
    assert losses[-1] < losses[0]
    model.eval()  # inference statistics (batch norm's running ones) stay finite too
    assert torch.isfinite(model.log_prob(preprocess(pixels))).all()
    assert torch.isfinite(model.sample(2, temperature=0.7)).all()
