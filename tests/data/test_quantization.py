"""Bits per dimension are exact: dequantisation, n_bits reduction and pixel scaling included."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen.data import bits_per_dim, postprocess, preprocess


@pytest.mark.parametrize("n_bits", [1, 3, 5, 8])
def test_uniform_density_costs_exactly_n_bits_per_dim(n_bits):
    # p(v) = 1 on [-0.5, 0.5)^D puts probability 2^-n on every bin of every pixel: n bits each.
    bpd = bits_per_dim(torch.zeros(4, dtype=torch.float64), num_dims=3 * 8 * 8, n_bits=n_bits)
    torch.testing.assert_close(bpd, torch.full_like(bpd, float(n_bits)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_bits", [1, 5, 8])
def test_preprocess_puts_each_pixel_in_its_bin(n_bits):
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).repeat(64, 1, 1, 1)
    v = preprocess(pixels, n_bits, dtype=torch.float64)
    q = torch.div(pixels.double(), 2 ** (8 - n_bits), rounding_mode="floor")
    lower, upper = q / 2 ** n_bits - 0.5, (q + 1) / 2 ** n_bits - 0.5
    assert (v >= lower).all() and (v < upper).all()
    # the noise fills the bin uniformly: its mean is the bin centre
    centre = ((v - lower) * 2 ** n_bits).mean().item()
    assert abs(centre - 0.5) < 0.01
    # and display quantises back to the same bin
    assert torch.equal(postprocess(v, n_bits) * (2 ** n_bits - 1), q)


def test_preprocess_is_reproducible_with_a_generator():
    pixels = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    a = preprocess(pixels, generator=torch.Generator().manual_seed(3))
    b = preprocess(pixels, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_gaussian_bpd_agrees_with_the_exact_discrete_probability():
    # One pixel, model N(0, 0.2^2) on v. The dequantised bpd is an upper bound on the exact
    # -log2 P(bin) and, for a density this smooth, within 1e-3 bits of it.
    sigma, n_bits = 0.2, 8
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64),
                                        torch.tensor(sigma, dtype=torch.float64))
    bins = torch.arange(256, dtype=torch.float64)
    lo, hi = bins / 256 - 0.5, (bins + 1) / 256 - 0.5
    p_bin = normal.cdf(hi) - normal.cdf(lo)
    u = (torch.arange(4000, dtype=torch.float64) + 0.5) / 4000  # midpoint rule over the bin
    v = (bins[:, None] + u[None]) / 256 - 0.5
    dequant_bpd = bits_per_dim(normal.log_prob(v).mean(1), num_dims=1, n_bits=n_bits)
    exact_bits = -torch.log2(p_bin)
    assert (dequant_bpd >= exact_bits - 1e-9).all()
    assert (dequant_bpd - exact_bits).max() < 1e-3
    assert math.isclose(float(dequant_bpd[128]), float(exact_bits[128]), abs_tol=1e-4)
