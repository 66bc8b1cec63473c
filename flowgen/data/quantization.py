"""From pixels to the continuous data a flow models, and bits per dimension.

Pixels ``x in {0..255}`` are reduced to ``n_bits`` (``q = floor(x / 2^(8 - n_bits))``), dequantised
with uniform noise and scaled to ``v = (q + u) / 2^n_bits - 0.5 in [-0.5, 0.5)``, ``u ~ U[0, 1)``.
Since ``v`` is ``(q + u)`` divided by ``2^n_bits`` (a shift adds nothing), the discrete
log-likelihood is bounded by ``log P(q) >= E_u[log p(v)] - D log(2^n_bits)`` (Theis et al. 2016),
which :func:`bits_per_dim` turns into bits per dimension.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def preprocess(
    pixels: Tensor,
    n_bits: int = 8,
    noise: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """uint8 pixels ``[B, C, H, W]`` -> dequantised model input in ``[-0.5, 0.5)``."""
    if not 1 <= n_bits <= 8:
        raise ValueError(f"n_bits must be between 1 and 8, got {n_bits}")
    x = pixels.to(dtype)
    if n_bits < 8:
        x = torch.floor(x / 2 ** (8 - n_bits))
    if noise:
        x = x + torch.rand(x.shape, generator=generator, device=x.device, dtype=dtype)
    else:
        x = x + 0.5  # the bin's centre: for deterministic reconstructions, not for bpd
    return x / 2**n_bits - 0.5


def postprocess(x: Tensor, n_bits: int = 8) -> Tensor:
    """Model-space images ``[B, C, H, W]`` -> quantised images in ``[0, 1]`` for display."""
    bins = 2**n_bits
    q = torch.floor((x + 0.5) * bins).clamp(0, bins - 1)
    return q / (bins - 1)


def bits_per_dim(log_prob: Tensor, num_dims: int, n_bits: int = 8) -> Tensor:
    """``-(log p(v) - D log 2^n_bits) / (D log 2)`` per sample, for ``log p(v)`` in nats."""
    return -(log_prob - num_dims * n_bits * math.log(2)) / (num_dims * math.log(2))
