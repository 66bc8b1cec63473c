"""NICE (Dinh et al. 2015)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from flowgen.distributions import StandardLogistic, StandardNormal
from flowgen.flows import AdditiveMLPCoupling, DiagonalScaling, FlowSequence
from flowgen.flows.multiscale import MultiScale
from flowgen.models.flow_model import FlowModel, image_shape

PRIORS = {"logistic": StandardLogistic, "gaussian": StandardNormal}


class NICE(FlowModel):
    """NICE on images of ``event_shape`` ``(C, H, W)``, each seen as one vector of ``D = C H W``
    entries: ``couplings`` additive couplings with alternating even/odd partitions, each with a
    ReLU MLP (``hidden_layers`` layers of ``hidden_features``), then a diagonal scaling
    ``exp(s)``. One level: the single latent has the image's shape ``(C, H, W)``.

    ``prior="logistic"`` (the paper's): the base is the standard logistic (sampling at
    temperature ``T`` draws ``T * logit(u)``, ``u ~ U(0, 1)``); ``"gaussian"``: ``N(0, I)``.
    """

    arch = "nice"

    def __init__(self, event_shape: Sequence[int] = (1, 28, 28), couplings: int = 4,
                 hidden_features: int = 1000, hidden_layers: int = 5, prior: str = "logistic"):
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {list(PRIORS)}, got {prior!r}")
        if couplings < 1:
            raise ValueError(f"couplings must be >= 1, got {couplings}")
        in_channels, image_size = image_shape(event_shape, "NICE")
        shape = (in_channels, image_size, image_size)
        d = math.prod(shape)
        flows = [AdditiveMLPCoupling(d, k % 2, hidden_features, hidden_layers)
                 for k in range(couplings)]
        transform = MultiScale([FlowSequence([*flows, DiagonalScaling(shape)])], shape)
        super().__init__(transform, PRIORS[prior]((d,)), shape)
        self.prior = prior
