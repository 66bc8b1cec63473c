"""Factor-out with a learned conditional prior (Dinh et al. 2017; Kingma & Dhariwal 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from flowgen.flows.base import Flow, check_image
from flowgen.flows.nets import ZeroConv2d
from flowgen.flows.prior import ClassEmbedding


class Split(Flow):
    """Factor out half the channels of ``[B, C, H, W]`` with a Gaussian prior given the rest.

    The first ``kept = C - C // 2`` channels ``h`` go on to the next level; the last ``C // 2``
    channels ``z`` have the prior ``N(mean(h), exp(log_scale(h))^2)``, produced by a
    zero-initialised convolution (so it starts as ``N(0, 1)``). ``forward`` standardises them:
    ``y = [h, (z - mean) / scale]``, ``logdet = -sum log_scale``, so the second part of ``y`` is
    standard-normal under the model; the multi-scale model takes it as this level's latent.

    ``learned=False`` fixes the prior at ``N(0, 1)`` (then the layer is the identity).
    ``num_classes > 0`` adds label-dependent per-channel offsets when ``cond`` is given.
    ``max_log_scale=b`` bounds the log-scale above, softly: ``softplus(b) - softplus(b - r)``
    of the net's ``r`` (0 at 0, about ``r`` below, at most ``softplus(b)``), so sampling
    multiplies a latent by at most ``e^softplus(b)`` here; sharp priors (very negative log-scales,
    e.g. a constant background) are unaffected. ``None``: the plain ``r`` (unbounded: an input
    unlike the data can drive it to ``e^30``).
    """

    def __init__(self, channels: int, learned: bool = True, num_classes: int = 0,
                 max_log_scale: float | None = None):
        super().__init__()
        self.max_log_scale = max_log_scale
        self.kept = channels - channels // 2
        factored = channels - self.kept
        self.prior = ZeroConv2d(self.kept, 2 * factored) if learned else None
        self.classes = ClassEmbedding(num_classes, factored) if num_classes else None

    def _prior(self, h: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.prior is not None:
            mean, log_scale = self.prior(h).to(h.dtype).chunk(2, dim=1)  # fp32 under autocast
        else:
            mean = log_scale = h.new_zeros(1, 1, 1, 1)
        if self.classes is not None and cond is not None:
            dm, ds = self.classes(cond)
            mean, log_scale = mean + dm, log_scale + ds
        if self.max_log_scale is not None:
            b = self.max_log_scale
            log_scale = math.log1p(math.exp(b)) - F.softplus(b - log_scale)
        return mean, log_scale

    @staticmethod
    def _standardise(z: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
        return (z - mean) * torch.exp(-log_scale)

    @staticmethod
    def _unstandardise(eps: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
        return eps * log_scale.exp() + mean

    def _logdet(self, z: Tensor, log_scale: Tensor) -> Tensor:
        return log_scale.expand_as(z).flatten(1).sum(1)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(x, "Split")
        h, z = x[:, :self.kept], x[:, self.kept:]
        mean, log_scale = self._prior(h, cond)
        eps = self._standardise(z, mean, log_scale)
        return torch.cat([h, eps], 1), -self._logdet(z, log_scale)

    def reconstruct(self, y: Tensor, cond: Tensor | None = None
                    ) -> tuple[list[Tensor], Tensor, Tensor]:
        # h passes through: one evaluation of the prior serves the inversion and the graph.
        h, eps = y.detach()[:, :self.kept], y.detach()[:, self.kept:]
        h.requires_grad_()
        mean, log_scale = self._prior(h, cond)
        with torch.no_grad():
            z = self._unstandardise(eps, mean, log_scale)
        z.requires_grad_()
        eps_again = self._standardise(z, mean, log_scale)
        return [h, z], torch.cat([h, eps_again], 1), -self._logdet(z, log_scale)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(y, "Split.inverse")
        h, eps = y[:, :self.kept], y[:, self.kept:]
        mean, log_scale = self._prior(h, cond)
        z = self._unstandardise(eps, mean, log_scale)
        return torch.cat([h, z], 1), self._logdet(z, log_scale)
