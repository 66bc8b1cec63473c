"""Every invertible layer against brute force, through one parametrised check (as zuko does):
a new layer joins ``LAYERS`` and is tested for free."""

from __future__ import annotations

import io

import pytest
import torch

from flowgen.flows import (
    ActNorm,
    AdditiveCoupling,
    AdditiveMLPCoupling,
    AffineCoupling,
    BatchNormFlow,
    ChannelMaskedCoupling,
    CheckerboardCoupling,
    DiagonalScaling,
    FlowSequence,
    InvertibleConv1x1,
    LearnedPrior,
    LUInvertibleConv1x1,
    Split,
    Squeeze,
)
from tests.conftest import brute_force_logabsdet, perturb_


class EvalBatchNorm(BatchNormFlow):
    """BatchNormFlow held in eval mode (running statistics), with non-trivial statistics: the
    map the contract is about. Batch statistics are checked in tests/models/test_realnvp.py."""

    def __init__(self, channels: int):
        super().__init__(channels)
        with torch.no_grad():
            self.running_mean.normal_(0, 0.5)
            self.running_var.uniform_(0.3, 2.0)

    def train(self, mode: bool = True):
        return super().train(False)

def bounded_coupling_near_its_floor(channels: int = 4) -> AffineCoupling:
    """A bounded affine coupling whose sigmoid is ~e^-6, below its floor e^-4: the checks then
    run where the floor and the sigmoid mix, not only where the floor is negligible."""
    layer = AffineCoupling(channels, hidden_channels=8, scale="bounded")
    with torch.no_grad():
        layer.net[-1].conv.bias[channels - channels // 2:] = -8.0  # the raw log-scale half
    return layer


# name -> (factory, input shape [C, H, W])
LAYERS = {
    "squeeze": (lambda: Squeeze(), (2, 4, 4)),
    "actnorm": (lambda: ActNorm(3), (3, 4, 4)),
    "conv1x1": (lambda: InvertibleConv1x1(4), (4, 3, 3)),
    "conv1x1_lu": (lambda: LUInvertibleConv1x1(4), (4, 3, 3)),
    "affine_coupling": (lambda: AffineCoupling(4, hidden_channels=8), (4, 4, 4)),
    "affine_coupling_odd": (lambda: AffineCoupling(5, hidden_channels=8), (5, 3, 3)),
    "affine_coupling_bounded": (lambda: AffineCoupling(4, hidden_channels=8, scale="bounded"),
                                (4, 4, 4)),
    "affine_coupling_bounded_at_floor": (bounded_coupling_near_its_floor, (4, 3, 3)),
    "additive_coupling": (lambda: AdditiveCoupling(4, hidden_channels=8), (4, 4, 4)),
    "split": (lambda: Split(4), (4, 3, 3)),
    "split_odd": (lambda: Split(3), (3, 3, 3)),
    "split_bounded": (lambda: Split(4, max_log_scale=0.1), (4, 3, 3)),  # the bound bites
    "learned_prior": (lambda: LearnedPrior(3), (3, 2, 2)),
    "checkerboard_coupling_even": (lambda: CheckerboardCoupling(3, 0, hidden_channels=8,
                                                                res_blocks=1), (3, 4, 4)),
    "checkerboard_coupling_odd": (lambda: CheckerboardCoupling(2, 1, hidden_channels=8,
                                                               res_blocks=2), (2, 3, 3)),
    "channel_coupling_even": (lambda: ChannelMaskedCoupling(4, 0, hidden_channels=8,
                                                            res_blocks=1), (4, 3, 3)),
    "channel_coupling_odd": (lambda: ChannelMaskedCoupling(5, 1, hidden_channels=8,
                                                           res_blocks=1), (5, 2, 2)),
    "batchnorm_eval": (lambda: EvalBatchNorm(3), (3, 3, 3)),
    "additive_mlp_coupling_even": (lambda: AdditiveMLPCoupling(12, 0, hidden_features=16,
                                                               hidden_layers=2), (3, 2, 2)),
    "additive_mlp_coupling_odd": (lambda: AdditiveMLPCoupling(9, 1, hidden_features=16,
                                                              hidden_layers=1), (1, 3, 3)),
    "diagonal_scaling": (lambda: DiagonalScaling((2, 3, 3)), (2, 3, 3)),
    "sequence": (lambda: FlowSequence([ActNorm(2), Squeeze(), LUInvertibleConv1x1(8),
                                       AffineCoupling(8, hidden_channels=8), Split(8)]),
                 (2, 4, 4)),
}


def make(name: str, batch: int = 3) -> tuple[torch.nn.Module, torch.Tensor]:
    factory, shape = LAYERS[name]
    layer = factory().double()
    x = torch.randn(batch, *shape, dtype=torch.float64)
    layer.train()
    layer(x)  # data-dependent initialisation where a layer has one
    perturb_(layer)
    return layer.eval(), x


@pytest.mark.parametrize("name", LAYERS)
def test_round_trip_and_logdet_signs(name):
    layer, x = make(name)
    y, logdet = layer(x)
    assert y.shape[0] == x.shape[0] and y.numel() == x.numel()
    assert logdet.shape == (x.shape[0],)
    x_back, logdet_inv = layer.inverse(y)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros_like(logdet), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", LAYERS)
def test_logdet_matches_brute_force_jacobian(name):
    layer, x = make(name, batch=2)
    _, logdet = layer(x)
    expected = brute_force_logabsdet(lambda v: layer(v)[0], x)
    torch.testing.assert_close(logdet, expected, rtol=0, atol=1e-8)
    # and the inverse's log-determinant is that of the inverse map's Jacobian
    y = layer(x)[0]
    expected_inv = brute_force_logabsdet(lambda v: layer.inverse(v)[0], y)
    torch.testing.assert_close(layer.inverse(y)[1], expected_inv, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", LAYERS)
def test_every_parameter_gets_a_gradient(name):
    layer, x = make(name)
    x.requires_grad_(True)
    y, logdet = layer(x)
    (y.pow(2).sum() + logdet.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", LAYERS)
def test_reconstruct_recovers_the_input_and_the_gradients(name):
    """``reconstruct`` (backward without stored activations) gives back ``x`` from ``y`` and the
    same gradients, for input and parameters, as an ordinary forward."""
    layer, x = make(name)
    layer.train()
    x = x.requires_grad_()
    y, logdet = layer(x)
    grad_y, grad_ld = torch.randn_like(y), torch.randn_like(logdet)
    params = [p for p in layer.parameters()]
    pairs = [(o, g) for o, g in ((y, grad_y), (logdet, grad_ld)) if o.requires_grad]
    expected = torch.autograd.grad([o for o, _ in pairs], [x, *params], [g for _, g in pairs],
                                   allow_unused=True)
    leaves, y_again, logdet_again = layer.reconstruct(y.detach())
    torch.testing.assert_close(torch.cat(leaves, 1), x.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(y_again, y, rtol=0, atol=1e-10)
    outputs = [(o, g) for o, g in ((y_again, grad_y), (logdet_again, grad_ld)) if o.requires_grad]
    got = torch.autograd.grad([o for o, _ in outputs], [*leaves, *params],
                              [g for _, g in outputs], allow_unused=True)
    got = [torch.cat(got[:len(leaves)], 1), *got[len(leaves):]]
    for g, e in zip(got, expected, strict=True):
        if e is None:
            assert g is None or g.abs().max() == 0
        else:
            torch.testing.assert_close(g, e, rtol=0, atol=1e-10)
    layer.eval()


@pytest.mark.parametrize("name", LAYERS)
def test_state_dict_round_trip(name):
    layer, x = make(name)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh = LAYERS[name][0]().double()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    fresh.train()  # a loaded ActNorm must not re-initialise, even in training mode
    y, logdet = layer(x)
    y2, logdet2 = fresh(x)
    torch.testing.assert_close(y2, y, rtol=0, atol=0)
    torch.testing.assert_close(logdet2, logdet, rtol=0, atol=0)
