"""A whole Glow against brute force, its closed-form density, sampling and its errors."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen.data import bits_per_dim, preprocess
from flowgen.flows import ActNorm, InvertibleConv1x1, LearnedPrior, Split
from flowgen.models import Glow
from tests.conftest import brute_force_logabsdet, flat, perturb_, trained_like


def identity_glow(levels: int = 2) -> Glow:
    """A Glow whose every step is the identity: N(0, I) on the scaled pixels."""
    model = Glow(event_shape=(3, 8, 8), levels=levels, steps=2, hidden_channels=4,
                 coupling="additive", lu=False).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, InvertibleConv1x1):
                m.weight.copy_(torch.eye(m.weight.shape[0]))
    return model


@pytest.mark.parametrize("n_bits", [8, 5])
def test_bpd_of_a_standard_normal_glow_matches_the_formula(n_bits):
    model = identity_glow()
    pixels = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    v = preprocess(pixels, n_bits, generator=torch.Generator().manual_seed(0),
                   dtype=torch.float64)
    bpd = bits_per_dim(model.log_prob(v), model.num_dims, n_bits)
    d = 3 * 8 * 8
    log_p = (-0.5 * v.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    expected = -(log_p - d * math.log(2 ** n_bits)) / (d * math.log(2))
    torch.testing.assert_close(bpd, expected, rtol=0, atol=1e-6)


def test_bpd_of_a_gaussian_with_known_mean_and_scale():
    # One level: squeeze -> ActNorm(bias b, log-scale s) -> identity conv -> identity coupling
    # -> top prior (mean m, log-scale t). Then squeeze(v)_c ~ N(m e^-s - b, e^(t - s)).
    model = Glow(event_shape=(1, 4, 4), levels=1, steps=1, hidden_channels=4,
                 coupling="additive", lu=False).double().eval()
    actnorm = next(m for m in model.modules() if isinstance(m, ActNorm))
    prior = next(m for m in model.modules() if isinstance(m, LearnedPrior))
    conv = next(m for m in model.modules() if isinstance(m, InvertibleConv1x1))
    b, s, m, t = (torch.randn(4, dtype=torch.float64) * 0.3 for _ in range(4))
    with torch.no_grad():
        conv.weight.copy_(torch.eye(4))
        actnorm.bias.copy_(b.view(1, 4, 1, 1))
        actnorm.log_scale.copy_(s.view(1, 4, 1, 1))
        prior.prior.mean.copy_(m.view(1, 4, 1, 1))
        prior.prior.log_scale.copy_(t.view(1, 4, 1, 1))
    v = torch.rand(5, 1, 4, 4, dtype=torch.float64) - 0.5
    squeezed = torch.nn.functional.pixel_unshuffle(v, 2)
    normal = torch.distributions.Normal((m * torch.exp(-s) - b).view(1, 4, 1, 1),
                                        torch.exp(t - s).view(1, 4, 1, 1))
    expected = normal.log_prob(squeezed).flatten(1).sum(1)
    torch.testing.assert_close(model.log_prob(v), expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(bits_per_dim(model.log_prob(v), 16, 8),
                               -(expected - 16 * 8 * math.log(2)) / (16 * math.log(2)),
                               rtol=0, atol=1e-6)


def test_sampling_shapes_temperature_and_generator():
    model = Glow(event_shape=(3, 8, 8), levels=2, steps=1, hidden_channels=8).eval()
    perturb_(model, 0.05)
    x = model.sample(5, temperature=0.7)
    assert x.shape == (5, 3, 8, 8) and torch.isfinite(x).all()
    cold = model.sample(3, temperature=0.0)
    torch.testing.assert_close(cold[0], cold[2])  # T=0: every sample is the mode
    a = model.sample(2, temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = model.sample(2, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("n, temperature, message", [
    (0, 0.7, "positive integer"), (4, -0.1, "temperature"), (4, float("nan"), "temperature"),
])
def test_sampling_rejects_nonsense(n, temperature, message):
    model = Glow(event_shape=(1, 4, 4), levels=1, steps=1, hidden_channels=4)
    with pytest.raises(ValueError, match=message):
        model.sample(n, temperature=temperature)


def test_image_size_must_divide_by_two_to_the_levels():
    with pytest.raises(ValueError, match=r"image size 28 is not divisible by 2\*\*levels = 8: "
                                         r"use levels<=2"):
        Glow(event_shape=(1, 28, 28), levels=3)


def test_wrong_input_shape_names_both_shapes():
    model = Glow(event_shape=(1, 8, 8), levels=2, steps=1, hidden_channels=4)
    with pytest.raises(ValueError, match=r"built for samples of shape \(1, 8, 8\), got a batch "
                                         r"of shape \(2, 3, 8, 8\)"):
        model(torch.zeros(2, 3, 8, 8))


def test_glow_layout_follows_the_paper():
    model = Glow(event_shape=(3, 32, 32), levels=3, steps=4, hidden_channels=16)
    assert model.latent_shapes == [(6, 16, 16), (12, 8, 8), (48, 4, 4)]
    splits = [m for m in model.modules() if isinstance(m, Split)]
    actnorms = [m for m in model.modules() if isinstance(m, ActNorm)]
    assert len(splits) == 2 and len(actnorms) == 3 * 4


OPTIONS = {
    "reverse": dict(permutation="reverse"),
    "shuffle": dict(permutation="shuffle", coupling="additive"),
    "fixed-top": dict(learn_top=False),
    "standard-splits": dict(split_prior="standard"),
    "conditional": dict(num_classes=3),
    "conditional-splits": dict(num_classes=3, condition_splits=True),
}


@pytest.mark.parametrize("name", OPTIONS)
def test_glow_options_are_exact(name):
    config = dict(event_shape=(2, 8, 8), levels=2, steps=2, hidden_channels=8,
                  **OPTIONS[name])
    model, x = trained_like(Glow, config)
    cond = torch.tensor([0, 2, 1]) if config.get("num_classes") else None
    zs, logdet = model(x, cond)
    x_back, logdet_inv = model.inverse(zs, cond)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros_like(logdet), rtol=0, atol=1e-10)
    for i in range(2):
        c = None if cond is None else cond[i:i + 1]
        expected = brute_force_logabsdet(lambda v, c=c: flat(model(v, c)[0]), x[i:i + 1])
        torch.testing.assert_close(logdet[i:i + 1], expected, rtol=0, atol=1e-8)
    labels = None if cond is None else torch.tensor([0, 1, 2, 0])
    samples = model.float().sample(4, labels, temperature=0.7)
    assert samples.shape == (4, 2, 8, 8) and torch.isfinite(samples).all()


def test_class_conditional_prior_depends_on_the_label_and_has_a_head():
    model, x = trained_like(Glow, dict(event_shape=(1, 8, 8), levels=2, steps=1,
                                       hidden_channels=8, num_classes=4))
    a = model.log_prob(x, torch.tensor([0, 0, 0]))
    b = model.log_prob(x, torch.tensor([3, 3, 3]))
    assert not torch.allclose(a, b)
    unconditional = model.log_prob(x)  # cond=None: the label-free prior
    assert torch.isfinite(unconditional).all()
    _, _, top = model.forward_features(x)
    assert model.class_logits(top).shape == (3, 4)
    with pytest.raises(ValueError, match=r"labels must lie in 0..3"):
        model.log_prob(x, torch.tensor([0, 1, 7]))
