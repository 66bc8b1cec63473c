"""Couplings with a fully connected conditioner: NICE's (Dinh et al. 2015), which act on each
sample flattened to ``D`` entries but take and return any ``[B, ...]`` shape (images
``[B, C, H, W]`` in the models), and :func:`mlp_coupling`, the vector ``[B, D]`` coupling of
RealNVP-style density models on vector data."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow, per_sample
from flowgen.flows.bijections import AdditiveBijection, TanhAffineBijection
from flowgen.flows.coupling import Coupling
from flowgen.flows.nets import with_context
from flowgen.flows.partitions import Alternating, Halves
from flowgen.flows.spline import RationalQuadraticSpline


class MLP(nn.Sequential):
    """``[B, in_features] -> [B, out_features]``: ``hidden_layers`` x (Linear, ReLU) of width
    ``hidden_features``, then a Linear. The output layer starts at zero, so the coupling using
    it starts as the identity. ``context_features = K > 0``: called ``net(x, context [B, K])``,
    the context concatenated to the input."""

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 1000,
                 hidden_layers: int = 5, context_features: int = 0):
        if hidden_layers < 1 or hidden_features < 1:
            raise ValueError(f"MLP needs hidden_layers >= 1 and hidden_features >= 1, got "
                             f"{hidden_layers} and {hidden_features}")
        layers: list[nn.Module] = []
        width = in_features + context_features
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_features), nn.ReLU()]
            width = hidden_features
        out = nn.Linear(width, out_features)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        super().__init__(*layers, out)
        self.context_features = context_features

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(with_context(x, context, self.context_features, "MLP"))


class AdditiveMLPCoupling(Coupling):
    """NICE's additive coupling on ``D = num_features`` flattened entries: with ``parity=0`` the
    even-indexed entries ``x_a`` are kept and ``x_b`` (odd) becomes ``x_b + m(x_a)``, ``m`` an
    :class:`MLP`; ``parity=1`` swaps the roles. Volume preserving: ``logdet == 0``. Takes and
    returns any ``[B, ...]`` of ``D`` entries per sample."""

    def __init__(self, num_features: int, parity: int = 0, hidden_features: int = 1000,
                 hidden_layers: int = 5, context_features: int = 0, num_classes: int = 0):
        if num_features < 2:
            raise ValueError(f"AdditiveMLPCoupling needs at least 2 features, got {num_features}")
        partition = Alternating(parity, num_features)
        kept, changed = partition.sizes(num_features)
        net = MLP(kept, changed, hidden_features, hidden_layers, context_features)
        super().__init__(partition, net, AdditiveBijection(), context_features, num_classes)
        self.num_features = num_features

    @property
    def kept(self) -> Tensor:
        """Indices of the flattened entries passed through (for inspection)."""
        return torch.arange(self.num_features)[self.partition.parity::2]

    @property
    def changed(self) -> Tensor:
        """Indices of the flattened entries transformed (for inspection)."""
        return torch.arange(self.num_features)[1 - self.partition.parity::2]


#: ``mlp_coupling(transform=...)``: the elementwise bijection of a vector coupling.
VECTOR_TRANSFORMS = ("affine", "additive", "spline")


def mlp_coupling(features: int, parity: int = 0, hidden_features: int = 64,
                 hidden_layers: int = 2, transform: str = "affine", context_features: int = 0,
                 num_classes: int = 0, bins: int = 8, tail_bound: float = 3.0) -> Coupling:
    """A coupling on vectors ``[B, features]`` (RealNVP's, for vector data): the halves of the
    features (:class:`Halves`, ``parity`` picks the half kept), an :class:`MLP` conditioner
    (``hidden_layers`` x ``hidden_features``, ReLU) and RealNVP's bounded-log-scale affine map
    (``transform="affine"``, :class:`TanhAffineBijection`), a shift (``"additive"``) or the
    rational-quadratic spline of NSF (``"spline"``, :class:`RationalQuadraticSpline` of ``bins``
    bins on ``[-tail_bound, tail_bound]``, identity outside). Starts as the identity (the MLP's
    last layer is zero). ``context_features``/``num_classes``: as :class:`Coupling` (``cond`` a
    float context ``[B, K]`` or labels ``[B]``)."""
    if transform not in VECTOR_TRANSFORMS:
        raise ValueError(f"transform must be one of {list(VECTOR_TRANSFORMS)}, got {transform!r}")
    if features < 2:
        raise ValueError(f"a coupling needs at least 2 features, got {features}")
    bijection = {"affine": TanhAffineBijection, "additive": lambda _: AdditiveBijection(),
                 "spline": lambda _: RationalQuadraticSpline(bins, tail_bound)}[transform]

    def conditioner(n_in: int, n_out: int, k: int) -> MLP:
        return MLP(n_in, n_out, hidden_features, hidden_layers, k)

    return Coupling.build(Halves(parity), features, conditioner, bijection, context_features,
                          num_classes, event_kinds=("vector",))


class DiagonalScaling(Flow):
    """NICE's final diagonal scaling ``y = x * exp(s)`` with one learned ``s`` per entry of a
    sample of shape ``shape`` (``(D,)`` for vectors, ``(C, H, W)`` for images): ``logdet = sum
    s``. Starts as the identity."""

    event_kinds = ("vector", "image")

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(shape)
        self.log_scale = nn.Parameter(torch.zeros(1, *self.shape))
        # A vector's shape (D,), an image's (C, H, W): the instance takes only its own kind.
        self.event_kinds = {1: ("vector",), 3: ("image",)}.get(len(self.shape), ())

    def _check(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"DiagonalScaling was built for samples of shape {self.shape}, got "
                             f"{tuple(x.shape)}")

    def _logdet(self, x: Tensor) -> Tensor:
        return per_sample(self.log_scale.sum(), x.shape[0])

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x)
        return x * self.log_scale.exp(), self._logdet(x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        return y * torch.exp(-self.log_scale), -self._logdet(y)
