"""A RealNVP-style flow for vector data: affine couplings of small MLPs (Dinh et al. 2017)."""

from __future__ import annotations

from collections.abc import Sequence

from flowgen.distributions import StandardNormal
from flowgen.flows import ActNorm, FlowSequence, mlp_coupling
from flowgen.models.flow_model import FlowModel


class CouplingMLP(FlowModel):
    """Vectors of ``event_shape`` ``(D,)`` -> ``N(0, I)``: ``couplings`` couplings of the two
    halves of the features, alternating which half is kept, each conditioned by a ReLU MLP of
    ``hidden_layers`` layers of ``hidden_features`` and applying RealNVP's bounded-log-scale
    affine map (``transform="affine"``), a shift (``"additive"``) or NSF's rational-quadratic
    spline (``"spline"``: ``bins`` bins on ``[-tail_bound, tail_bound]``, the identity outside;
    RQ-NSF (C) of Durkan et al. 2019, configs/model/nsf_coupling.yaml). ``actnorm``: an
    :class:`ActNorm` before every coupling. ``num_classes > 0``: every coupling's conditioner
    also sees the label ``cond`` (embedded first). Starts as the identity.
    """

    arch = "coupling_mlp"

    def __init__(self, event_shape: Sequence[int] = (2,), couplings: int = 8,
                 hidden_features: int = 64, hidden_layers: int = 2, transform: str = "affine",
                 actnorm: bool = False, num_classes: int = 0, bins: int = 8,
                 tail_bound: float = 3.0):
        shape = tuple(event_shape)
        if len(shape) != 1:
            raise ValueError(f"CouplingMLP models vectors (D,), the data has samples of shape "
                             f"{shape}: pick a vector dataset (data=two_moons) or an image model")
        if couplings < 1:
            raise ValueError(f"couplings must be >= 1, got {couplings}")
        context = 8 if num_classes else 0
        flows = []
        for k in range(couplings):
            if actnorm:
                flows.append(ActNorm(shape[0]))
            flows.append(mlp_coupling(shape[0], k % 2, hidden_features, hidden_layers, transform,
                                      context_features=context, num_classes=num_classes,
                                      bins=bins, tail_bound=tail_bound))
        super().__init__(FlowSequence(flows), StandardNormal(shape), shape,
                         num_classes=num_classes)
