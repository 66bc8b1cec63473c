"""Layer-specific behaviour beyond the shared contract."""

from __future__ import annotations

import pytest
import torch

from flowgen.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    BatchNormFlow,
    InvertibleConv1x1,
    LUInvertibleConv1x1,
    Permutation,
    Split,
    Squeeze,
)
from tests.conftest import perturb_


def test_squeeze_moves_2x2_patches_into_channels():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y, _ = Squeeze()(x)
    assert y.shape == (1, 4, 2, 2)
    assert y[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left patch


def test_squeeze_rejects_odd_sizes_with_a_clear_message():
    with pytest.raises(ValueError, match="even height and width, got 7x7"):
        Squeeze()(torch.zeros(1, 1, 7, 7))


def test_actnorm_initialises_from_the_first_training_batch():
    x = 3.0 + 2.0 * torch.randn(256, 3, 8, 8, dtype=torch.float64)
    layer = ActNorm(3).double()
    y, _ = layer(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64),
                               atol=1e-10, rtol=0)
    torch.testing.assert_close(y.std((0, 2, 3), unbiased=False),
                               torch.ones(3, dtype=torch.float64), atol=1e-10, rtol=0)
    assert bool(layer.initialized)
    before = layer.bias.clone()
    layer(x + 5)  # a second batch does not re-initialise
    torch.testing.assert_close(layer.bias, before)


def test_actnorm_keeps_unit_scale_on_a_constant_channel():
    x = torch.randn(16, 2, 4, 4)
    x[:, 1] = 0.25
    layer = ActNorm(2)
    y, logdet = layer(x)
    assert torch.isfinite(y).all() and torch.isfinite(logdet).all()
    assert layer.log_scale[0, 1].item() == 0.0
    torch.testing.assert_close(y[:, 1], torch.zeros_like(y[:, 1]))


def test_actnorm_does_not_initialise_in_eval_mode():
    layer = ActNorm(2).eval()
    layer(torch.randn(4, 2, 3, 3) + 7)
    assert not bool(layer.initialized) and layer.bias.abs().sum() == 0


@pytest.mark.parametrize("conv", [InvertibleConv1x1, LUInvertibleConv1x1])
def test_conv1x1_starts_as_a_rotation(conv):
    layer = conv(6)
    _, logdet = layer(torch.randn(2, 6, 3, 3))
    torch.testing.assert_close(logdet, torch.zeros(2), atol=1e-5, rtol=0)


def test_lu_conv_matches_the_plain_conv_with_the_same_matrix():
    lu = LUInvertibleConv1x1(5).double()
    with torch.no_grad():
        lu.log_s.add_(0.3 * torch.randn(5, dtype=torch.float64))
    plain = InvertibleConv1x1(5).double()
    with torch.no_grad():
        plain.weight.copy_(lu.weight_and_logabsdet()[0])
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    (y1, ld1), (y2, ld2) = lu(x), plain(x)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(ld1, ld2)


@pytest.mark.parametrize("coupling", [AffineCoupling, AdditiveCoupling])
def test_coupling_leaves_the_first_half_alone(coupling):
    layer = coupling(6, hidden_channels=8)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p))
    x = torch.randn(2, 6, 4, 4)
    y, _ = layer(x)
    torch.testing.assert_close(y[:, :3], x[:, :3], rtol=0, atol=0)
    assert not torch.allclose(y[:, 3:], x[:, 3:])


def test_affine_coupling_starts_with_glow_scale():
    layer = AffineCoupling(4, hidden_channels=8)
    x = torch.randn(2, 4, 3, 3)
    y, logdet = layer(x)
    s = torch.sigmoid(torch.tensor(2.0))
    torch.testing.assert_close(y[:, 2:], x[:, 2:] * s)
    torch.testing.assert_close(logdet, torch.full((2,), 2 * 9 * torch.log(s).item()))


def test_split_starts_with_a_standard_normal_prior():
    layer = Split(4)
    x = torch.randn(3, 4, 2, 2)
    y, logdet = layer(x)
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    assert logdet.abs().sum() == 0


def test_layers_reject_tensors_of_a_kind_they_do_not_take():
    with pytest.raises(ValueError, match=r"Squeeze expects images \[B, C, H, W\]"):
        Squeeze()(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"AffineCoupling expects images \[B, C, H, W\]"):
        AffineCoupling(4, hidden_channels=8)(torch.zeros(4, 4))
    with pytest.raises(ValueError,
                       match=r"ActNorm expects vectors \[B, D\] or images \[B, C, H, W\]"):
        ActNorm(3)(torch.zeros(4, 3, 5))


def test_actnorm_initialises_per_feature_on_vectors():
    x = torch.tensor([3.0, -1.0]) + torch.tensor([2.0, 0.5]) * torch.randn(512, 2).double()
    layer = ActNorm(2).double()
    y, logdet = layer(x)
    assert y.shape == (512, 2)
    torch.testing.assert_close(y.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(2, dtype=torch.float64),
                               atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet, layer.log_scale.sum().expand(512))  # no H * W factor


@pytest.mark.parametrize("conv", [InvertibleConv1x1, LUInvertibleConv1x1])
def test_conv1x1_is_a_linear_map_on_vectors(conv):
    layer = conv(4).double()
    perturb_(layer, 0.1)
    weight, logabsdet = layer.weight_and_logabsdet()
    x = torch.randn(5, 4, dtype=torch.float64)
    y, logdet = layer(x)
    torch.testing.assert_close(y, x @ weight.T)
    torch.testing.assert_close(logdet, logabsdet.expand(5))
    # the same as one pixel of an image
    y_img, logdet_img = layer(x[:, :, None, None])
    torch.testing.assert_close(y_img.flatten(1), y)
    torch.testing.assert_close(logdet_img, logdet)


def test_permutation_and_batchnorm_take_vectors():
    x = torch.randn(6, 3, dtype=torch.float64)
    y, _ = Permutation.reverse(3)(x)
    torch.testing.assert_close(y, x.flip(1), rtol=0, atol=0)
    norm = BatchNormFlow(3).double()
    y, logdet = norm(x)  # training mode: batch statistics over the batch
    torch.testing.assert_close(y.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-10,
                               rtol=0)
    assert logdet.shape == (6,)
