"""From pixels to the continuous data a flow models: n_bits reduction, dequantisation, scaling.

Pixels ``x in {0..255}`` are reduced to ``n_bits`` (``q = floor(x / 2^(8 - n_bits))``), dequantised
with noise ``u in [0, 1)`` and scaled to ``v = (q + u) / 2^n_bits - 0.5 in [-0.5, 0.5)``. A
:class:`Dequantizer` draws ``u`` given the pixels and returns ``log q(u | x)`` with ``v``, so the
objective can bound the discrete likelihood (see :func:`flowgen.objectives.bits_per_dim`): the
uniform one now (``log q = 0``), learned (variational) ones later behind the same call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def preprocess(
    pixels: Tensor,
    n_bits: int = 8,
    noise: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """uint8 pixels ``[B, C, H, W]`` -> dequantised model input in ``[-0.5, 0.5)``, uniform noise
    (``noise=False``: every pixel at its bin's centre)."""
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


class Dequantizer(nn.Module):
    """Pixels -> ``(v, log q(u | x))``: continuous data for the flow and the log-density ``[B]``
    of the noise that was drawn (summed over the pixels). An ``nn.Module`` so a learned
    dequantiser's parameters train with the model.

    ``generator`` draws fresh noise. ``noise_seed`` (an int) asks for a fixed noise pattern drawn
    from that seed instead, the same for every image and batch: what makes a validation
    deterministic (``val_noise_seed``) and independent of how the images were batched.
    """

    def forward(self, pixels: Tensor, n_bits: int, generator: torch.Generator | None = None,
                noise_seed: int | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class UniformDequantizer(Dequantizer):
    """``u ~ U[0, 1)^D``: ``q(u | x) = 1`` on the bin, so ``log q = 0`` (Theis et al. 2016)."""

    def __init__(self):
        super().__init__()
        self._fixed: tuple[tuple, Tensor] | None = None  # (key, pattern): not a buffer, not saved

    def forward(self, pixels: Tensor, n_bits: int, generator: torch.Generator | None = None,
                noise_seed: int | None = None) -> tuple[Tensor, Tensor]:
        """uint8 ``[B, *event]`` -> (``v [B, *event]`` in ``[-0.5, 0.5)``, zeros ``[B]``)."""
        if noise_seed is None:
            x = preprocess(pixels, n_bits, generator=generator)
        else:
            # Bin centre (q + 0.5) / 2^n - 0.5, moved by the fixed (u - 0.5) / 2^n: the exact
            # arithmetic val_noise_seed runs have always used, so their val/bpd stays the same.
            x = preprocess(pixels, n_bits, noise=False)
            x = x + (self.fixed_noise(x, noise_seed) - 0.5) / 2**n_bits
        return x, x.new_zeros(x.shape[0])

    def fixed_noise(self, x: Tensor, seed: int) -> Tensor:
        """The pattern ``u [*event]`` of ``seed`` for batches like ``x``: drawn on the CPU, so every
        rank and device gets the same values; kept until the shape, device or seed changes."""
        key = (seed, tuple(x.shape[1:]), x.device, x.dtype)
        if self._fixed is None or self._fixed[0] != key:
            generator = torch.Generator().manual_seed(seed)
            noise = torch.rand(x.shape[1:], generator=generator, dtype=x.dtype).to(x.device)
            self._fixed = (key, noise)
        return self._fixed[1]
