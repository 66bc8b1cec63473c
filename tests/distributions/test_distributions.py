"""Base distributions against torch.distributions and brute force; FlowModel on vectors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from flowgen.distributions import (
    ConditionalDiagonalGaussian,
    DiagonalGaussian,
    StandardLogistic,
    StandardNormal,
)
from flowgen.flows import FlowSequence, InvertibleConv1x1, mlp_coupling
from flowgen.flows.base import Flow
from flowgen.models import FlowModel


def test_standard_normal_and_logistic_log_prob_and_temperature():
    z = torch.randn(6, 3, 2, dtype=torch.float64) * 3
    normal = StandardNormal((3, 2)).double()
    torch.testing.assert_close(normal.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum((1, 2)))
    logistic = StandardLogistic((3, 2)).double()
    brute = (-z - 2 * torch.log1p(torch.exp(-z))).sum((1, 2))  # log(e^-z / (1 + e^-z)^2)
    torch.testing.assert_close(logistic.log_prob(z), brute)
    for dist in (normal, logistic):
        g = torch.Generator().manual_seed(3)
        ones = dist.sample(4000, generator=g)
        g = torch.Generator().manual_seed(3)
        half = dist.sample(4000, temperature=0.5, generator=g)
        torch.testing.assert_close(half, 0.5 * ones)  # T scales the noise, nothing else
        assert dist.sample(3, temperature=0.0).abs().max() == 0
        with pytest.raises(ValueError, match="temperature must be a finite number"):
            dist.sample(2, temperature=float("nan"))


def test_logistic_density_integrates_to_one():
    grid = torch.linspace(-40, 40, 200001, dtype=torch.float64)
    density = StandardLogistic((1,)).double().log_prob(grid[:, None]).exp()
    assert abs(torch.trapezoid(density, grid).item() - 1) < 1e-9


def test_diagonal_gaussian_learned_and_class_conditional():
    dist = DiagonalGaussian((3,), num_classes=2).double()
    with torch.no_grad():
        dist.mean.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
        dist.log_scale.copy_(torch.tensor([[0.1, -0.3, 0.7]]))
        dist.classes.embedding.weight.normal_()
    labels = torch.tensor([0, 1, 1, 0])
    z = torch.randn(4, 3, dtype=torch.float64)
    mean, log_scale = dist.params(z, labels)
    expected = Normal(mean, log_scale.exp()).log_prob(z).sum(1)
    torch.testing.assert_close(dist.log_prob(z, labels), expected)
    eps, ld = dist.standardize(z, labels)
    back, ld_back = dist.unstandardize(eps, labels)
    torch.testing.assert_close(back, z)
    torch.testing.assert_close(ld, -ld_back)
    # log p(z) = log N(eps) + log|d eps/dz|: the identity that lets a flow fold the prior in
    torch.testing.assert_close(dist.log_prob(z, labels),
                               StandardNormal((3,)).double().log_prob(eps) + ld)
    draws = dist.sample(20000, labels[:1].expand(20000), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws.mean(0), mean[0], atol=0.05, rtol=0)


def test_conditional_gaussian_bound_and_context_gradient():
    net = torch.nn.Linear(2, 6).double()
    dist = ConditionalDiagonalGaussian((3,), net, max_log_scale=1.0).double()
    context = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    z = torch.randn(5, 3, dtype=torch.float64)
    with torch.no_grad():
        net.bias.fill_(50.0)
    log_scale = dist.params(z, context=context)[1]
    assert log_scale.max() <= math.log1p(math.e) + 1e-9  # softplus(1)
    dist.log_prob(z, context).sum().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0


class _NoInverse(Flow):
    inverse_kind = "none"
    event_kinds = ("vector",)

    def forward(self, x, cond=None):
        return x, x.new_zeros(x.shape[0])


def test_flow_model_on_vectors_with_a_learned_base():
    torch.manual_seed(0)
    transform = FlowSequence([InvertibleConv1x1(4), mlp_coupling(4, 0, 8)]).double()
    model = FlowModel(transform, DiagonalGaussian((4,))).double()
    x = torch.randn(7, 4, dtype=torch.float64)
    z, logdet = transform(x)
    torch.testing.assert_close(model.log_prob(x), model.base.log_prob(z) + logdet)
    (latent,) = model.encode(x)
    torch.testing.assert_close(model.decode([latent]), x)
    assert model.latent_shapes == [(4,)] and model.sample(3, temperature=0.7).shape == (3, 4)
    with pytest.raises(ValueError, match="one temperature per level: 1, got 2"):
        model.sample(3, temperature=[0.5, 0.7])
    with pytest.raises(ValueError, match="built for samples of shape \\(4,\\)"):
        model.log_prob(torch.zeros(2, 5, dtype=torch.float64))
    blind = FlowModel(_NoInverse(), StandardNormal((4,)))
    assert blind.log_prob(torch.zeros(2, 4)).shape == (2,)
    with pytest.raises(ValueError, match="cannot decode or sample"):
        blind.sample(2)


def test_per_level_temperatures_scale_each_level():
    from flowgen.models import Glow

    model = Glow((1, 8, 8), levels=2, steps=1, hidden_channels=4)
    g = torch.Generator().manual_seed(1)
    ones = model.sample_latents(2, 1.0, g)
    g = torch.Generator().manual_seed(1)
    mixed = model.sample_latents(2, [0.0, 0.5], g)
    assert mixed[0].abs().max() == 0
    torch.testing.assert_close(mixed[1], 0.5 * ones[1])
