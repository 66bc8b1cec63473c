"""Layers that let vector flows model images: the logit of the pixels, and flattening."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from flowgen.flows.base import Flow, check_event


class Flatten(Flow):
    """``[B, *shape] -> [B, prod(shape)]`` (row-major), e.g. an image ``(C, H, W)`` for a flow
    on vectors (MAF on pixels). A reordering of the entries: ``logdet == 0``."""

    event_kinds = ("image",)

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(shape),)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"Flatten was built for samples of shape {self.shape}, got "
                             f"{tuple(x.shape)}")
        return x.reshape(x.shape[0], -1), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if y.dim() != 2 or y.shape[1] != math.prod(self.shape):
            raise ValueError(f"Flatten.inverse needs [B, {math.prod(self.shape)}], got "
                             f"{tuple(y.shape)}")
        return y.reshape(y.shape[0], *self.shape), y.new_zeros(y.shape[0])


class LogitTransform(Flow):
    """Pixels in model space ``[-0.5, 0.5)`` -> logit space: ``y = logit(s)`` with
    ``s = alpha + (1 - 2 alpha)(x + 1/2)`` (Dinh et al. 2017; Papamakarios et al. 2017 use
    ``alpha = 1e-6`` on MNIST, ``0.05`` on CIFAR-10), so a flow on unbounded values models
    bounded pixels. ``logdet = sum log(1 - 2 alpha) - log s - log(1 - s)``: part of the
    density, so bits/dim stay those of the pixels. Any batch shape."""

    event_kinds = ("vector", "image")

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0 < alpha < 0.5:  # alpha = 0: a pixel at exactly -0.5 would map to -inf
            raise ValueError(f"alpha must be in (0, 0.5), e.g. 1e-6 or 0.05, got {alpha}")
        self.alpha = float(alpha)

    def _logdet(self, y: Tensor) -> Tensor:
        """``log|dy/dx|`` at logit ``y``: ``-log s - log(1 - s)`` as softplus terms of ``y``,
        accurate where ``s`` is near 0 or 1."""
        per_entry = math.log1p(-2 * self.alpha) + F.softplus(-y) + F.softplus(y)
        return per_entry.flatten(1).sum(1)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(x, self.event_kinds, "LogitTransform")
        y = torch.logit(self.alpha + (1 - 2 * self.alpha) * (x + 0.5))
        return y, self._logdet(y)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(y, self.event_kinds, "LogitTransform.inverse")
        x = (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha) - 0.5
        return x, -self._logdet(y)
