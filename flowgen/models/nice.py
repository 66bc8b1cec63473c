"""NICE (Dinh et al. 2015)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from flowgen.flows import AdditiveMLPCoupling, DiagonalScaling, FlowSequence
from flowgen.models.multiscale import MultiScaleFlow, image_shape

PRIORS = ("logistic", "gaussian")


def logistic_log_prob(z: Tensor) -> Tensor:
    """Elementwise log-density of the standard logistic: ``-(softplus(z) + softplus(-z))``."""
    return -(F.softplus(z) + F.softplus(-z))


class NICE(MultiScaleFlow):
    """NICE on ``[B, in_channels, image_size, image_size]`` images, each seen as one vector of
    ``D = C H W`` entries: ``couplings`` additive couplings with alternating even/odd partitions,
    each with a ReLU MLP (``hidden_layers`` layers of ``hidden_features``), then a diagonal
    scaling ``exp(s)``. One level: the single latent has the image's shape ``(C, H, W)``.

    ``prior="logistic"`` (the paper's): ``log p(z) = -sum(softplus(z) + softplus(-z))``, and
    sampling at temperature ``T`` draws ``T * logit(u)``, ``u ~ U(0, 1)``; ``"gaussian"``: the
    ``N(0, I)`` of every other model. :meth:`prior_noise` gives the unit-temperature latents.
    """

    arch = "nice"

    def __init__(self, in_channels: int = 1, image_size: int = 28, couplings: int = 4,
                 hidden_features: int = 1000, hidden_layers: int = 5, prior: str = "logistic",
                 event_shape=None):
        if event_shape is not None:
            in_channels, image_size = image_shape(event_shape, type(self).__name__)
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {list(PRIORS)}, got {prior!r}")
        if couplings < 1:
            raise ValueError(f"couplings must be >= 1, got {couplings}")
        shape = (in_channels, image_size, image_size)
        d = math.prod(shape)
        flows = [AdditiveMLPCoupling(d, k % 2, hidden_features, hidden_layers)
                 for k in range(couplings)]
        super().__init__([FlowSequence([*flows, DiagonalScaling(shape)])], shape)
        self.prior = prior
        self.config = dict(in_channels=in_channels, image_size=image_size, couplings=couplings,
                           hidden_features=hidden_features, hidden_layers=hidden_layers,
                           prior=prior)

    def latent_log_prob(self, zs: Sequence[Tensor]) -> Tensor:
        """``log p(zs)`` under the chosen prior, summed over all entries, ``[B]``."""
        if self.prior == "gaussian":
            return super().latent_log_prob(zs)
        return sum(logistic_log_prob(z).flatten(1).sum(1) for z in zs)

    def prior_noise(self, n: int, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> list[Tensor]:
        """Latents drawn from the prior at temperature 1, one ``[n, *shape]`` per level (here
        one); on the model's device and dtype unless given."""
        p = next(self.parameters())
        device = p.device if device is None else device
        dtype = p.dtype if dtype is None else dtype
        if self.prior == "gaussian":
            return [torch.randn(n, *s, generator=generator, device=device, dtype=dtype)
                    for s in self.latent_shapes]
        out = []
        for s in self.latent_shapes:
            u = torch.rand(n, *s, generator=generator, device=device, dtype=dtype)
            u = u.clamp_min(torch.finfo(dtype).tiny)  # rand is in [0, 1): only 0 needs care
            out.append(torch.log(u) - torch.log1p(-u))
        return out
