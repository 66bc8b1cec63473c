"""The models with NSF's rational-quadratic spline couplings: Glow and RealNVP with
``coupling=spline``, CouplingMLP with ``transform=spline`` (model=nsf_coupling). Brute-force
checks as in tests/models/test_contract.py, a training step, sampling, memory modes, the
recorded config, and the old configs that must rebuild as before."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen.flows import Coupling, RationalQuadraticSpline, set_memory
from flowgen.models import CouplingMLP, Glow, build_model, model_metadata
from flowgen.models.realnvp import RealNVP
from tests.conftest import brute_force_logabsdet, compose_train, flat, trained_like
from tests.models.test_contract import fit_bits_per_dim, prior_log_density

#: tail bounds of 1-1.5: the images' activations fall both on the splines and in their tails
MODELS = {
    "glow-spline": (Glow, dict(event_shape=(1, 4, 4), levels=2, steps=2, hidden_channels=8,
                               coupling="spline", spline_bins=4, tail_bound=1.0)),
    "realnvp-spline": (RealNVP, dict(event_shape=(1, 4, 4), levels=2, hidden_channels=8,
                                     res_blocks=1, norm="actnorm", coupling="spline",
                                     spline_bins=3, tail_bound=1.5)),
}


def splines(model: torch.nn.Module) -> list[RationalQuadraticSpline]:
    return [m for m in model.modules() if isinstance(m, RationalQuadraticSpline)]


@pytest.mark.parametrize("name", MODELS)
def test_round_trip_logdet_and_log_prob_match_brute_force(name):
    cls, config = MODELS[name]
    model, x = trained_like(cls, config)
    assert splines(model) and all(s.bins == config["spline_bins"] for s in splines(model))
    zs, logdet = model(x)
    x_back, logdet_inv = model.inverse(zs)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros_like(logdet), rtol=0, atol=1e-10)
    expected = brute_force_logabsdet(lambda v: flat(model(v)[0]), x[:2])
    torch.testing.assert_close(logdet[:2], expected, rtol=0, atol=1e-8)
    torch.testing.assert_close(model.log_prob(x[:2]), prior_log_density(model, zs)[:2] + expected,
                               rtol=0, atol=1e-8)


@pytest.mark.parametrize("cls, config", [
    (Glow, dict(event_shape=(3, 8, 8), levels=2, steps=2, hidden_channels=8, coupling="spline")),
    (RealNVP, dict(event_shape=(1, 8, 8), levels=2, hidden_channels=8, res_blocks=1,
                   coupling="spline")),
], ids=["glow", "realnvp"])
def test_trains_and_samples_finite_values(cls, config):
    torch.manual_seed(0)
    model = cls(**config)
    pixels = torch.randint(0, 256, (16, *config["event_shape"]), dtype=torch.uint8)
    losses = fit_bits_per_dim(model, pixels, 3)
    assert losses[-1] < losses[0]
    model.eval()
    for temperature in (0.0, 0.7, 1.0):
        assert torch.isfinite(model.sample(8, temperature=temperature)).all()


def test_glow_spline_starts_as_the_identity_coupling():
    """Every spline coupling of a fresh Glow is the identity (its net ends in a zero layer)."""
    model = Glow((1, 8, 8), levels=2, steps=2, hidden_channels=8, coupling="spline").double()
    couplings = [m for m in model.modules() if isinstance(m, Coupling)]
    assert len(couplings) == 4
    for layer in couplings:
        x = 2 * torch.randn(3, layer.net[0].in_channels * 2, 4, 4, dtype=torch.float64)
        y, logdet = layer(x)
        torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
        torch.testing.assert_close(logdet, torch.zeros(3, dtype=torch.float64), rtol=0,
                                   atol=1e-12)


@pytest.mark.parametrize("mode", ["checkpoint", "invertible"])
def test_glow_spline_memory_modes_give_the_stored_gradients(mode):
    config = dict(event_shape=(3, 8, 8), levels=2, steps=2, hidden_channels=8,
                  coupling="spline", tail_bound=1.0)
    model, x = trained_like(Glow, config)

    def gradients(memory: str) -> torch.Tensor:
        set_memory(model, memory)
        model.train()
        model.zero_grad(set_to_none=True)
        v = x.clone().requires_grad_()
        (-model.log_prob(v).mean()).backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p)
                 for p in model.parameters()]
        return torch.cat([v.grad.flatten(), *(g.flatten() for g in grads)])

    expected = gradients("store")
    assert expected.abs().max() > 1e-3
    got = gradients(mode)
    assert (got - expected).abs().max() <= 1e-10 * expected.abs().max()


@pytest.mark.parametrize("cls, config", [
    (Glow, dict(event_shape=(1, 8, 8), levels=2, steps=1, hidden_channels=8, coupling="spline",
                spline_bins=5, tail_bound=2.5)),
    (RealNVP, dict(event_shape=(1, 4, 4), levels=2, hidden_channels=8, res_blocks=1,
                   coupling="spline", spline_bins=3, tail_bound=2.0)),
    (CouplingMLP, dict(event_shape=(3,), couplings=2, hidden_features=8, transform="spline",
                       bins=6, tail_bound=4.0)),
], ids=["glow", "realnvp", "coupling_mlp"])
def test_records_the_spline_options_and_rebuilds_from_them(cls, config):
    model = cls(**config)
    meta = model_metadata(model, 8)
    assert {k: meta["config"][k] for k in config} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
    bins = config.get("spline_bins", config.get("bins"))
    assert {(s.bins, s.tail_bound) for s in splines(model)} == {(bins, config["tail_bound"])}
    rebuilt = build_model(meta["arch"], meta["config"])
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, *config["event_shape"]) - 0.5
    model.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt.log_prob(x), model.log_prob(x), rtol=0, atol=0)


@pytest.mark.parametrize("cls, config", [
    (Glow, dict(event_shape=(1, 8, 8), levels=2, steps=1, hidden_channels=8)),
    (Glow, dict(event_shape=(1, 8, 8), levels=2, steps=1, hidden_channels=8,
                coupling="additive")),
    (RealNVP, dict(event_shape=(1, 4, 4), levels=2, hidden_channels=8, res_blocks=1)),
    (CouplingMLP, dict(event_shape=(2,), couplings=2, hidden_features=8)),
], ids=["glow", "glow-additive", "realnvp", "coupling_mlp"])
def test_a_config_without_the_spline_options_rebuilds_as_before(cls, config):
    """A checkpoint's recorded config from before the options: no spline anywhere, the spline
    options recorded at their defaults, and the same weights as the new records give."""
    model = cls(**config)
    assert not splines(model)
    new = cls(**model.config)
    assert list(new.state_dict()) == list(model.state_dict())
    assert {k: v.shape for k, v in new.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}


def test_coupling_mlp_spline_starts_as_the_identity_and_inverts():
    model = CouplingMLP((4,), couplings=3, hidden_features=16, transform="spline",
                        bins=5, tail_bound=2.0).double()
    x = 2 * torch.randn(6, 4, dtype=torch.float64)
    expected = -0.5 * (x.pow(2).sum(1) + 4 * math.log(2 * math.pi))
    torch.testing.assert_close(model.log_prob(x), expected, rtol=0, atol=1e-12)
    for p in model.parameters():
        p.data.add_(0.3 * torch.randn_like(p))
    zs = model.encode(x)
    torch.testing.assert_close(model.decode(zs), x, rtol=0, atol=1e-10)
    assert torch.isfinite(model.sample(5, temperature=1.0)).all()


@pytest.mark.parametrize("build, match", [
    (lambda: Glow((1, 8, 8), levels=2, steps=1, coupling="spline", spline_bins=1), "bins >= 2"),
    (lambda: Glow((1, 8, 8), levels=2, steps=1, coupling="spline", tail_bound=0.0),
     "tail_bound must be"),
    (lambda: Glow((1, 8, 8), levels=2, steps=1, coupling="splines"), "coupling must be one of"),
    (lambda: RealNVP((1, 4, 4), levels=2, coupling="additive"), "coupling must be one of"),
    (lambda: CouplingMLP((2,), transform="rqs"), "transform must be one of"),
])
def test_bad_spline_options_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_nsf_coupling_config_is_the_spline_vector_model(tmp_path):
    from hydra.utils import instantiate

    from flowgen.training.train import architecture_config

    cfg = compose_train(["data=two_moons", "model=nsf_coupling"], tmp_path, shrink_model=False)
    model = instantiate(architecture_config(cfg.model), event_shape=[2], _convert_="all")
    assert isinstance(model, CouplingMLP) and model.config["transform"] == "spline"
    assert len(splines(model)) == cfg.model.couplings
