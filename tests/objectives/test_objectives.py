"""Objectives in plain torch: dequantisation's noise and log q, bits/dim with the pixel scaling,
NLL in nats, the class head's terms and the loss they make."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from flowgen.objectives import (
    Density,
    ImageDensity,
    ObjectiveResult,
    Term,
    UniformDequantizer,
    bits_per_dim,
    event_dims,
    preprocess,
)


class UniformOnCube(nn.Module):
    """p(v) = 1 on [-0.5, 0.5)^D: every bin of every pixel has probability 2^-n_bits."""

    def __init__(self, event_shape):
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.seen: list[torch.Tensor] = []

    def log_prob(self, x, cond=None):
        self.seen.append(x)
        return x.new_zeros(x.shape[0])


class DiagonalGaussian(nn.Module):
    """N(mu, diag(sigma^2)) on vectors, with a linear class head on x (its "features")."""

    def __init__(self, dims: int = 2, num_classes: int = 0):
        super().__init__()
        self.event_shape = (dims,)
        self.num_classes = num_classes
        self.mu = nn.Parameter(torch.randn(dims))
        self.log_sigma = nn.Parameter(0.1 * torch.randn(dims))
        self.head = nn.Linear(dims, max(num_classes, 1))
        self.conds: list = []

    def log_prob(self, x, cond=None):
        self.conds.append(cond)
        normal = torch.distributions.Normal(self.mu, self.log_sigma.exp())
        return normal.log_prob(x).sum(1)

    def log_prob_and_features(self, x, cond=None):
        return self.log_prob(x, cond), x

    def class_logits(self, features):
        return self.head(features)


def test_uniform_dequantizer_fills_each_bin_and_has_log_q_zero():
    pixels = torch.randint(0, 256, (64, 3, 4, 4), dtype=torch.uint8)
    x, log_q = UniformDequantizer()(pixels, 5, generator=torch.Generator().manual_seed(0))
    q = torch.div(pixels, 8, rounding_mode="floor").float()
    assert torch.equal(log_q, torch.zeros(64))
    assert ((x >= q / 32 - 0.5) & (x < (q + 1) / 32 - 0.5)).all()
    again, _ = UniformDequantizer()(pixels, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)  # the generator alone decides the noise
    # the same values as the preprocess every other caller uses
    assert torch.equal(x, preprocess(pixels, 5, generator=torch.Generator().manual_seed(0)))


def test_fixed_noise_is_one_pattern_per_seed_whatever_the_batching():
    pixels = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8)
    deq = UniformDequantizer()
    whole = deq(pixels, 8, noise_seed=3)[0]
    parts = torch.cat([deq(pixels[i:i + 2], 8, noise_seed=3)[0] for i in range(0, 6, 2)])
    assert torch.equal(whole, parts)
    u = torch.rand((1, 4, 4), generator=torch.Generator().manual_seed(3))
    expected = ((pixels.float() + 0.5) / 256 - 0.5) + (u - 0.5) / 256  # the historic arithmetic
    assert torch.equal(whole, expected)
    assert not torch.equal(whole, deq(pixels, 8, noise_seed=4)[0])  # another seed, another one


@pytest.mark.parametrize("n_bits", [1, 5, 8])
def test_image_density_of_a_uniform_model_is_n_bits(n_bits):
    model = UniformOnCube((3, 4, 4))
    pixels = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    result = ImageDensity(n_bits)(model, (pixels, torch.zeros(5, dtype=torch.long)))
    assert result.metric == "bpd" and result.terms == {}
    torch.testing.assert_close(result.values, torch.full((5,), float(n_bits)), rtol=0,
                               atol=1e-6)
    assert model.seen[0].dtype == torch.float32 and model.seen[0].shape == (5, 3, 4, 4)


def test_bits_per_dim_subtracts_log_q():
    log_p, log_q = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(bits_per_dim(log_p, 12, 5, log_q),
                               bits_per_dim(log_p - log_q, 12, 5))
    # one nat less of log q raises the bound by a nat: 1 / (D log 2) bits per dimension fewer
    gap = bits_per_dim(log_p, 12, 5, log_q - 1) - bits_per_dim(log_p, 12, 5, log_q)
    torch.testing.assert_close(gap, torch.full_like(gap, -1 / (12 * math.log(2))))


def test_density_is_the_nll_in_nats_and_ignores_labels_of_an_unconditional_model():
    model = DiagonalGaussian()
    x = torch.randn(7, 2)
    result = Density()(model, (x, torch.arange(7)))
    expected = -torch.distributions.Normal(model.mu, model.log_sigma.exp()).log_prob(x).sum(1)
    assert result.metric == "nll"
    torch.testing.assert_close(result.values, expected)
    assert model.conds == [None]
    torch.testing.assert_close(result.loss(), expected.mean())


def test_class_head_terms_join_the_loss_with_their_weight():
    model = DiagonalGaussian(num_classes=3)
    x, labels = torch.randn(8, 2), torch.randint(0, 3, (8,))
    result = Density(classifier_weight=0.25)(model, (x, labels))
    assert set(result.terms) == {"class_loss", "accuracy"} and model.conds == [labels]
    ce = nn.functional.cross_entropy(model.head(x), labels)
    assert result.terms["class_loss"].weight == 0.25 and result.terms["accuracy"].weight == 0
    torch.testing.assert_close(result.terms["class_loss"].value, ce)
    torch.testing.assert_close(result.loss(), result.values.mean() + 0.25 * ce)
    result.loss().backward()
    assert model.head.weight.grad is not None  # the head trains through the loss
    # weight 0: no class head computed at all (today's behaviour), labels still the cond
    assert Density()(model, (x, labels)).terms == {}


def test_loss_adds_only_weighted_terms():
    result = ObjectiveResult("nll", torch.tensor([1.0, 3.0]),
                             {"a": Term(torch.tensor(10.0), 0.5), "b": Term(torch.tensor(7.0))})
    assert result.loss().item() == 2.0 + 5.0


def test_event_dims_prefers_event_shape_and_falls_back_to_older_names():
    assert event_dims(UniformOnCube((3, 4, 4))) == 48
    old = nn.Module()
    old.in_shape = (1, 8, 8)
    assert event_dims(old) == 64
    older = nn.Module()
    older.num_dims = 5
    assert event_dims(older) == 5
    with pytest.raises(TypeError, match="event_shape"):
        event_dims(nn.Module())


def test_bad_settings_fail_with_one_line():
    with pytest.raises(ValueError, match="n_bits must be between 1 and 8, got 9"):
        ImageDensity(9)
    with pytest.raises(ValueError, match="classifier_weight must be >= 0"):
        Density(classifier_weight=-1)
