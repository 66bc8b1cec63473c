"""Autoregressive flows for vectors (and images as vectors of pixels): MAF (Papamakarios et
al. 2017), its autoregressive neural spline variant (Durkan et al. 2019, ``transform="spline"``)
and IAF (Kingma et al. 2016).

The same stack of :class:`~flowgen.flows.MaskedAutoregressive` layers either way round: a MAF
evaluates densities in one MADE pass per layer and samples in ``D``; an IAF (each layer an
:class:`~flowgen.flows.InverseFlow`) samples in one pass per layer and evaluates densities in
``D``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from flowgen.distributions import StandardNormal
from flowgen.flows import (
    ActNorm,
    BatchNormFlow,
    Flatten,
    Flow,
    FlowSequence,
    InverseFlow,
    LogitTransform,
    MaskedAutoregressive,
    Permutation,
    RationalQuadraticSpline,
    TanhAffineBijection,
)
from flowgen.models.flow_model import FlowModel

#: ``transform=``: RealNVP's bounded-log-scale affine map, or NSF's rational-quadratic spline.
TRANSFORMS = ("affine", "spline")
#: ``permutation=``: how the entries are reordered between layers.
PERMUTATIONS = ("reverse", "random")
#: ``norm=``: the normalisation between layers (``batchnorm``: the MAF paper's).
NORMS = ("none", "batchnorm", "actnorm")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_int(name: str, value, low: int) -> None:
    # Here, not only in train.py's options table: models are built from Python and records too.
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _between(features: int, k: int, permutation: str, norm: str) -> list[Flow]:
    """What comes before layer ``k > 0``: the norm, then the permutation (a random one drawn
    from ``k``, so the architecture rebuilds the same from its arguments)."""
    flows: list[Flow] = []
    if norm == "batchnorm":
        flows.append(BatchNormFlow(features))
    elif norm == "actnorm":
        flows.append(ActNorm(features))
    if permutation == "reverse":
        flows.append(Permutation.reverse(features))
    else:
        flows.append(Permutation.shuffle(features, torch.Generator().manual_seed(k)))
    return flows


class MAF(FlowModel):
    """Vectors of ``event_shape`` ``(D,)`` -> ``N(0, I)``: ``layers`` masked autoregressive
    layers, each a MADE (``hidden_layers`` masked ReLU layers of ``hidden_features``, or as many
    residual blocks with ``residual``) and an elementwise map: RealNVP's bounded-log-scale
    affine (``transform="affine"``) or a rational-quadratic spline (``"spline"``: ``bins`` bins
    on ``[-tail_bound, tail_bound]``, the identity outside; configs/model/nsf_ar.yaml). Between
    layers a ``norm`` (``none``, ``batchnorm`` as in the MAF paper, ``actnorm``), then a
    ``permutation`` of the entries (``reverse``, or ``random``, drawn from the layer's index).
    ``num_classes > 0``: every MADE also sees the label ``cond`` (embedded first). Starts as the
    identity (without a norm). Images ``(C, H, W)`` are modelled as vectors of ``C*H*W``
    pixels (:class:`~flowgen.flows.Flatten`), in logit space with ``logit_alpha`` (the MAF
    paper's 1e-6 on MNIST, 0.05 on CIFAR-10; :class:`~flowgen.flows.LogitTransform`).

    Densities (``log_prob``, training) take one MADE pass per layer; sampling takes ``D``.
    """

    arch = "maf"
    #: IAF: every layer used backwards.
    inverted = False

    def __init__(self, event_shape: Sequence[int] = (2,), layers: int = 5,
                 hidden_features: int = 64, hidden_layers: int = 2, residual: bool = False,
                 transform: str = "affine", bins: int = 8, tail_bound: float = 3.0,
                 permutation: str = "reverse", norm: str = "none", num_classes: int = 0,
                 logit_alpha: float | None = None):
        name = type(self).__name__
        shape = tuple(event_shape)
        if len(shape) not in (1, 3):
            raise ValueError(f"{name} models vectors (D,) or images (C, H, W), the data has "
                             f"samples of shape {shape}")
        if logit_alpha is not None and len(shape) != 3:
            raise ValueError(f"logit_alpha is for images (pixels in [-0.5, 0.5)); the data are "
                             f"vectors of shape {shape}: leave it null")
        for key, value, low in (("layers", layers, 1), ("hidden_features", hidden_features, 1),
                                ("hidden_layers", hidden_layers, 1), ("bins", bins, 1),
                                ("num_classes", num_classes, 0)):
            _check_int(key, value, low)
        _check_choice("transform", transform, TRANSFORMS)
        _check_choice("permutation", permutation, PERMUTATIONS)
        _check_choice("norm", norm, NORMS)
        features, context = math.prod(shape), 8 if num_classes else 0
        # images: pixels to logit space (the MAF paper's), then one vector of C*H*W entries
        flows: list[Flow] = ([LogitTransform(logit_alpha)] if logit_alpha is not None else []
                             ) + ([Flatten(shape)] if len(shape) == 3 else [])
        for k in range(layers):
            if k:
                flows += _between(features, k, permutation, norm)
            bijection = (TanhAffineBijection(features) if transform == "affine"
                         else RationalQuadraticSpline(bins, tail_bound))
            layer = MaskedAutoregressive.build(
                features, bijection, hidden_features, hidden_layers, residual,
                context_features=context, num_classes=num_classes)
            flows.append(InverseFlow(layer) if self.inverted else layer)
        super().__init__(FlowSequence(flows), StandardNormal((features,)), shape,
                         num_classes=num_classes)


class IAF(MAF):
    """:class:`MAF`'s architecture with every autoregressive layer used backwards
    (:class:`~flowgen.flows.InverseFlow`): sampling takes one MADE pass per layer, densities
    ``D`` (Kingma et al. 2016). The same options as :class:`MAF`."""

    arch = "iaf"
    inverted = True
