"""The learned Gaussian prior of the top-level latent."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow, check_image, per_sample


class LearnedPrior(Flow):
    """Standardise ``[B, C, H, W]`` under a learned per-channel Gaussian ``N(mean, scale^2)``:
    ``y = (z - mean) / scale``, ``logdet = -H W sum(log_scale)``. Starts as ``N(0, 1)`` (Glow's
    ``learn_top``); its output is standard-normal under the model."""

    def __init__(self, channels: int):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def _logdet(self, x: Tensor) -> Tensor:
        return per_sample(-self.log_scale.sum() * (x.shape[2] * x.shape[3]), x.shape[0])

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(x, "LearnedPrior")
        return (x - self.mean) * torch.exp(-self.log_scale), self._logdet(x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(y, "LearnedPrior.inverse")
        return y * self.log_scale.exp() + self.mean, -self._logdet(y)
