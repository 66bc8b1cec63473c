"""Invertible 1x1 convolutions (Kingma & Dhariwal 2018, sec. 3.2): a learned channel mixing. On
vectors ``[B, D]`` the same layer is a learned invertible linear map ``x W^T``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowgen.flows.base import Flow, check_event, per_sample


def _channel_mix(x: Tensor, weight: Tensor) -> Tensor:
    """``W x`` at every pixel of ``[B, C, H, W]`` (``x W^T`` for vectors ``[B, C]``), in ``x``'s
    dtype. Callers disable autocast around it and around building ``W``: a bf16 ``W`` would no
    longer be the matrix whose log-determinant the layer reports, nor exactly invertible."""
    weight = weight.to(x.dtype)
    if x.dim() == 2:
        return F.linear(x, weight)
    c = weight.shape[0]
    return F.conv2d(x, weight.view(c, c, 1, 1))


def _random_rotation(channels: int) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
    return q


class _Conv1x1(Flow):
    """``y[:, :, i, j] = W x[:, :, i, j]`` for a ``C x C`` matrix ``W``; logdet ``H W log|det W|``
    (``log|det W|`` for vectors ``[B, C]``: ``y = x W^T``).

    Subclasses define how ``W`` is parametrised through :meth:`weight_and_logabsdet`.
    """

    event_kinds = ("vector", "image")

    def weight_and_logabsdet(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse_weight(self) -> tuple[Tensor, Tensor]:
        """``(W^-1, log|det W|)``, the inverse computed in float64. Outside autograd (sampling)
        both are cached until a parameter changes (tracked by the parameters' version
        counters, which every in-place update such as an optimiser step bumps)."""
        if torch.is_grad_enabled():
            return self._inverse_weight()
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters())
        cached = self.__dict__.get("_inverse_cache")
        if cached is None or cached[0] != key:
            cached = (key, self._inverse_weight())
            self.__dict__["_inverse_cache"] = cached  # not a buffer: never saved or moved
        return cached[1]

    def _inverse_weight(self) -> tuple[Tensor, Tensor]:
        weight, logabsdet = self.weight_and_logabsdet()
        # float64: inverting a 512x512 matrix in float32 loses ~1e-4 per sampling step.
        return torch.linalg.inv(weight.double()).to(weight.dtype), logabsdet

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(x, self.event_kinds, type(self).__name__)
        with torch.autocast(x.device.type, enabled=False):  # W and W x in full precision
            weight, logabsdet = self.weight_and_logabsdet()
            y = _channel_mix(x, weight)
        return y, per_sample(logabsdet.to(x.dtype) * _pixels(x), x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(y, self.event_kinds, type(self).__name__ + ".inverse")
        with torch.autocast(y.device.type, enabled=False):
            inverse_weight, logabsdet = self.inverse_weight()
            x = _channel_mix(y, inverse_weight)
        return x, per_sample(-logabsdet.to(y.dtype) * _pixels(y), y.shape[0])


def _pixels(x: Tensor) -> int:
    """``H * W`` of an image batch, 1 for vectors: how often ``W`` is applied per sample."""
    return math.prod(x.shape[2:])


class InvertibleConv1x1(_Conv1x1):
    """Unconstrained ``W``, initialised as a random rotation; ``log|det W|`` by ``slogdet``."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(_random_rotation(channels).float())

    def weight_and_logabsdet(self) -> tuple[Tensor, Tensor]:
        # float64: slogdet of a 512x512 matrix loses ~1e-3 in float32.
        return self.weight, torch.linalg.slogdet(self.weight.double())[1].to(self.weight.dtype)


class LUInvertibleConv1x1(_Conv1x1):
    """``W = P L (U + diag(sign * exp(log_s)))``: ``log|det W| = sum(log_s)`` in O(C).

    ``P`` (a permutation) and ``sign`` are fixed at initialisation; ``L`` is unit lower
    triangular and ``U`` strictly upper triangular.
    """

    def __init__(self, channels: int):
        super().__init__()
        p, lower, upper = torch.linalg.lu(_random_rotation(channels))
        s = upper.diagonal()
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", s.sign().float())
        self.register_buffer("lower_mask", torch.ones(channels, channels).tril(-1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(upper.triu(1).float())
        self.log_s = nn.Parameter(s.abs().log().float())

    def weight_and_logabsdet(self) -> tuple[Tensor, Tensor]:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        # P @ (L @ U) as a row gather: one small matmul per step instead of two.
        return (lower @ upper)[self.perm.argmax(1)], self.log_s.sum()
