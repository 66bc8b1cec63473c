"""Factor-out with a learned conditional prior (Dinh et al. 2017; Kingma & Dhariwal 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from flowgen.distributions import ConditionalDiagonalGaussian
from flowgen.distributions.gaussian import log_scale_sum
from flowgen.flows.base import Flow, check_image
from flowgen.flows.legacy import rename_legacy_keys
from flowgen.flows.nets import ZeroConv2d


class Split(Flow):
    """Factor out half the channels of ``[B, C, H, W]`` under a prior conditioned on the rest.

    The first ``kept = C - C // 2`` channels ``h`` go on to the next level; the last ``C // 2``
    channels ``z`` have the prior ``p(z | h) = N(mean(h), exp(log_scale(h))^2)``
    (:class:`~flowgen.distributions.ConditionalDiagonalGaussian` ``prior``, its net a
    zero-initialised convolution of ``h``, so it starts as ``N(0, 1)``). ``forward`` folds the
    prior in by standardising: ``y = [h, (z - mean) / scale]``, ``logdet = -sum log_scale``, so
    the second part of ``y`` is standard-normal under the model; the multi-scale flow takes it
    as this level's latent.

    ``learned=False`` fixes the prior at ``N(0, 1)`` (then the layer is the identity).
    ``num_classes > 0`` adds label-dependent per-channel offsets when ``cond`` is given.
    ``max_log_scale=b`` bounds the prior's log-scale softly by ``softplus(b)`` (see
    :class:`~flowgen.distributions.ConditionalDiagonalGaussian`); ``None``: unbounded (an input
    unlike the data can then drive it to ``e^30``).
    """

    def __init__(self, channels: int, learned: bool = True, num_classes: int = 0,
                 max_log_scale: float | None = None):
        super().__init__()
        self.kept = channels - channels // 2
        factored = channels - self.kept
        self.prior = ConditionalDiagonalGaussian(
            (factored, 1, 1), ZeroConv2d(self.kept, 2 * factored) if learned else None,
            num_classes=num_classes, max_log_scale=max_log_scale)

    @property
    def conditional(self) -> bool:
        return self.prior.classes is not None

    def _labels(self, cond: Tensor | None) -> Tensor | None:
        return cond if self.conditional else None

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(x, "Split")
        h, z = x[:, :self.kept], x[:, self.kept:]
        eps, logdet = self.prior.standardize(z, self._labels(cond), context=h)
        return torch.cat([h, eps], 1), logdet

    def reconstruct(self, y: Tensor, cond: Tensor | None = None
                    ) -> tuple[list[Tensor], Tensor, Tensor]:
        # h passes through: one evaluation of the prior's net serves the inversion and the graph.
        h, eps = y.detach()[:, :self.kept], y.detach()[:, self.kept:]
        h.requires_grad_()
        mean, log_scale = self.prior.params(eps, self._labels(cond), context=h)
        z = (eps * log_scale.detach().exp() + mean.detach()).requires_grad_()
        eps_again = (z - mean) * (-log_scale).exp()
        return [h, z], torch.cat([h, eps_again], 1), -log_scale_sum(log_scale, z)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(y, "Split.inverse")
        h, eps = y[:, :self.kept], y[:, self.kept:]
        z, logdet = self.prior.unstandardize(eps, self._labels(cond), context=h)
        return torch.cat([h, z], 1), logdet

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        rename_legacy_keys(state_dict, prefix, {
            "prior.conv.weight": "prior.net.conv.weight", "prior.conv.bias": "prior.net.conv.bias",
            "prior.log_scale": "prior.net.log_scale",
            "classes.embedding.weight": "prior.classes.embedding.weight"})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

