"""The prior of the top-level latent, folded into the flow: learned, optionally
class-conditional."""

from __future__ import annotations

from torch import Tensor

from flowgen.distributions import ClassEmbedding, DiagonalGaussian
from flowgen.flows.base import Flow, check_image
from flowgen.flows.legacy import rename_legacy_keys

__all__ = ["ClassEmbedding", "LearnedPrior"]


class LearnedPrior(Flow):
    """Standardise ``[B, C, H, W]`` under its prior ``N(mean, scale^2)`` per channel (a
    :class:`~flowgen.distributions.DiagonalGaussian`, ``prior``): ``y = (z - mean) / scale``,
    ``logdet = -H W sum(log_scale)``; its output is standard-normal under the model, so the
    model's base stays ``N(0, I)`` and temperatures and interpolations treat every level alike.

    ``learned``: mean and log-scale are parameters starting at ``N(0, 1)`` (Glow's
    ``learn_top``); otherwise the prior is ``N(0, 1)`` and the layer is the identity.
    ``num_classes > 0``: labels given as ``cond`` ``[B]`` add class-dependent offsets;
    ``cond=None`` uses the unconditional prior.
    """

    def __init__(self, channels: int, learned: bool = True, num_classes: int = 0):
        super().__init__()
        # per channel, broadcast over H, W: the event shape records only that
        self.prior = DiagonalGaussian((channels, 1, 1), learned=learned, num_classes=num_classes)

    @property
    def conditional(self) -> bool:
        return self.prior.classes is not None

    def _labels(self, cond: Tensor | None) -> Tensor | None:
        return cond if self.conditional else None

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(x, "LearnedPrior")
        return self.prior.standardize(x, self._labels(cond))

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(y, "LearnedPrior.inverse")
        return self.prior.unstandardize(y, self._labels(cond))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        rename_legacy_keys(state_dict, prefix, {"mean": "prior.mean",
                                                "log_scale": "prior.log_scale",
                                                "classes.embedding.weight":
                                                    "prior.classes.embedding.weight"})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
