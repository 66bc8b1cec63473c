"""Factor-out with a learned conditional prior (Dinh et al. 2017; Kingma & Dhariwal 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from flowgen.flows.base import Flow, check_image
from flowgen.flows.nets import ZeroConv2d


class Split(Flow):
    """Factor out half the channels of ``[B, C, H, W]`` with a Gaussian prior given the rest.

    The first ``kept = C - C // 2`` channels ``h`` go on to the next level; the last ``C // 2``
    channels ``z`` have the prior ``N(mean(h), exp(log_scale(h))^2)``, produced by a
    zero-initialised convolution (so it starts as ``N(0, 1)``). ``forward`` standardises them:
    ``y = [h, (z - mean) / scale]``, ``logdet = -sum log_scale``, so the second part of ``y`` is
    standard-normal under the model; the multi-scale model takes it as this level's latent.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.kept = channels - channels // 2
        self.prior = ZeroConv2d(self.kept, 2 * (channels - self.kept))

    def _prior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_scale = self.prior(h).chunk(2, dim=1)
        return mean, log_scale

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(x, "Split")
        h, z = x[:, :self.kept], x[:, self.kept:]
        mean, log_scale = self._prior(h)
        eps = (z - mean) * torch.exp(-log_scale)
        return torch.cat([h, eps], 1), -log_scale.flatten(1).sum(1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(y, "Split.inverse")
        h, eps = y[:, :self.kept], y[:, self.kept:]
        mean, log_scale = self._prior(h)
        z = eps * log_scale.exp() + mean
        return torch.cat([h, z], 1), log_scale.flatten(1).sum(1)
