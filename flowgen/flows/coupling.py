"""Coupling layers (Dinh et al. 2015, 2017; Kingma & Dhariwal 2018): one :class:`Coupling` =
a partition (:mod:`~flowgen.flows.partitions`) x a conditioner network x an elementwise
bijection (:mod:`~flowgen.flows.bijections`). The transformed entries depend on the kept ones
only through the network, so the Jacobian is triangular and its log-determinant the sum of the
bijection's log-derivatives. Glow's couplings are here; RealNVP's in :mod:`.masks`, NICE's and
the vector (MLP) ones in :mod:`.dense`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow, check_event
from flowgen.flows.bijections import (  # noqa: F401  (SCALES, BOUNDED_...: re-exported)
    BOUNDED_MIN_LOG_SCALE,
    SCALES,
    AdditiveBijection,
    AffineBijection,
    Bijection,
)
from flowgen.flows.nets import CouplingNet
from flowgen.flows.partitions import Halves, Partition


class Coupling(Flow):
    """``y = merge(x_a, bijection(x_b, net(x_a, context)))`` with ``(x_a, x_b) = partition.split
    (x)``; ``logdet`` the bijection's log-derivative summed over the transformed entries.

    ``net(x_a, context) -> h`` is any module taking the partition's conditioner input and
    returning ``bijection.params_per_entry`` parameters per transformed entry (see
    :meth:`build`); called ``net(x_a)`` when the layer has no context. ``cond``: with
    ``context_features = K > 0`` a float context ``[B, K]`` is used as it is, and integer labels
    ``[B]`` are embedded first (``num_classes > 0``: an ``nn.Embedding(num_classes, K)``); a
    layer built without a context ignores ``cond``. The network's output is cast to ``x``'s
    dtype: under autocast only the network runs in low precision, the map and its
    log-determinant (and their inversion) in full precision.

    ``event_kinds`` are the partition's unless given (e.g. a convolutional network: images).
    """

    event_kinds = ("vector", "image")

    def __init__(self, partition: Partition, net: nn.Module, bijection: Bijection,
                 context_features: int = 0, num_classes: int = 0,
                 event_kinds: tuple[str, ...] | None = None):
        super().__init__()
        if num_classes and not context_features:
            raise ValueError("embedding labels needs context_features > 0 (the embedding's size)")
        self.partition = partition
        # The bijection before the net: the parameter order (that of optimiser states) of the
        # classes this one replaced, whose log-scale parameter came first.
        self.bijection = bijection
        self.net = net
        self.context_features = context_features
        self.embedding = nn.Embedding(num_classes, context_features) if num_classes else None
        self.event_kinds = tuple(event_kinds or partition.event_kinds)

    @classmethod
    def build(cls, partition: Partition, features: int,
              conditioner: Callable[[int, int, int], nn.Module],
              bijection: Bijection | Callable[[int], Bijection], context_features: int = 0,
              num_classes: int = 0, event_kinds: tuple[str, ...] | None = None) -> Coupling:
        """A coupling on ``features`` channels (images) or entries (vectors):
        ``conditioner(in_features, out_features, context_features)`` builds the network for the
        partition's sizes; ``bijection`` is one, or ``bijection(transformed_features)`` builds
        it (e.g. :class:`~flowgen.flows.bijections.TanhAffineBijection`)."""
        kept, changed = partition.sizes(features)
        if not isinstance(bijection, Bijection):
            bijection = bijection(changed)
        net = conditioner(kept, bijection.params_per_entry * changed, context_features)
        return cls(partition, net, bijection, context_features, num_classes, event_kinds)

    def context(self, cond: Tensor | None, batch: int) -> Tensor | None:
        """``cond`` as the network's float context ``[B, K]`` (``None`` without a context)."""
        if not self.context_features:
            return None
        name, k = type(self).__name__, self.context_features
        if cond is None:
            raise ValueError(f"{name} is conditioned (context_features={k}): pass cond, labels "
                             f"[B] or a float context [B, {k}]")
        if not cond.is_floating_point():
            return self._embed(cond, batch)
        if cond.shape != (batch, k):
            raise ValueError(f"{name} expects a float context [B, {k}] for a batch of {batch}, "
                             f"got {tuple(cond.shape)}")
        return cond

    def _embed(self, labels: Tensor, batch: int) -> Tensor:
        name = type(self).__name__
        if self.embedding is None:
            raise ValueError(f"{name} got integer labels but has no label embedding: build it "
                             f"with num_classes, or pass a float context")
        if labels.shape != (batch,):
            raise ValueError(f"class labels must be of shape [B] = [{batch}], got "
                             f"{tuple(labels.shape)}")
        # Checked on the CPU only: on a GPU it would stall every step on a host sync (an
        # out-of-range index fails there anyway, in the embedding).
        n = self.embedding.num_embeddings
        if labels.numel() and not labels.is_cuda and (labels.min() < 0 or labels.max() >= n):
            raise ValueError(f"class labels must lie in 0..{n - 1}")
        return self.embedding(labels.long())

    def _params(self, x_a: Tensor, cond: Tensor | None, dtype: torch.dtype) -> Tensor:
        context = self.context(cond, x_a.shape[0])
        h = self.net(x_a) if context is None else self.net(x_a, context)
        return h.to(dtype)  # full precision under autocast (see the class docstring)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(x, self.event_kinds, type(self).__name__)
        x_a, x_b = self.partition.split(x)
        y_b, logabsdet = self.bijection(x_b, self._params(x_a, cond, x.dtype))
        return self.partition.merge(x_a, y_b).view(x.shape), \
            self.partition.sum_transformed(logabsdet)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(y, self.event_kinds, type(self).__name__ + ".inverse")
        y_a, y_b = self.partition.split(y)  # the kept entries of y are those of x
        x_b, logabsdet = self.bijection.inverse(y_b, self._params(y_a, cond, y.dtype))
        return self.partition.merge(y_a, x_b).view(y.shape), \
            self.partition.sum_transformed(logabsdet)

    def reconstruct(self, y: Tensor, cond: Tensor | None = None
                    ) -> tuple[list[Tensor], Tensor, Tensor]:
        y = y.detach()
        y_a, y_b = self.partition.split(y)
        if self.partition.leaves(y_a, y_b) is None:  # x is not a concatenation of x_a and x_b
            return super().reconstruct(y, cond)
        # x_a == y_a, so one evaluation of the net serves both the inversion and the graph.
        x_a = y_a.requires_grad_()
        h = self._params(x_a, cond, y.dtype)
        with torch.no_grad():
            x_b = self.bijection.inverse(y_b, h.detach())[0]
        x_b.requires_grad_()
        y_b, logabsdet = self.bijection(x_b, h)
        return (self.partition.leaves(x_a, x_b), self.partition.merge(x_a, y_b).view(y.shape),
                self.partition.sum_transformed(logabsdet))


def check_channels(channels: int, layer: str) -> None:
    if channels < 2:
        raise ValueError(f"{layer} needs at least 2 channels, got {channels}: squeeze the input "
                         f"first")


class AdditiveCoupling(Coupling):
    """Glow's additive coupling on ``[B, C, H, W]``: ``y_b = x_b + t(x_a)`` with ``x_a`` the
    first ``C // 2`` channels, ``t`` a :class:`CouplingNet`; ``logdet == 0`` (NICE)."""

    event_kinds = ("image",)

    def __init__(self, channels: int, hidden_channels: int = 512, context_features: int = 0,
                 num_classes: int = 0):
        check_channels(channels, type(self).__name__)
        partition = Halves(0)
        kept, changed = partition.sizes(channels)
        super().__init__(partition, CouplingNet(kept, changed, hidden_channels, context_features),
                         AdditiveBijection(), context_features, num_classes, self.event_kinds)
        self.split = kept


class AffineCoupling(Coupling):
    """Glow's affine coupling on ``[B, C, H, W]``: ``y_b = (x_b + t(x_a)) * s(x_a)``,
    ``logdet = sum log s``, ``x_a`` the first ``C // 2`` channels, ``(t, raw)`` from a
    :class:`CouplingNet`; ``scale`` ``"sigmoid"`` or ``"bounded"`` as in
    :class:`~flowgen.flows.bijections.AffineBijection`."""

    event_kinds = ("image",)

    def __init__(self, channels: int, hidden_channels: int = 512, scale: str = "sigmoid",
                 context_features: int = 0, num_classes: int = 0):
        bijection = AffineBijection(scale)
        check_channels(channels, type(self).__name__)
        partition = Halves(0)
        kept, changed = partition.sizes(channels)
        net = CouplingNet(kept, 2 * changed, hidden_channels, context_features)
        super().__init__(partition, net, bijection, context_features, num_classes,
                         self.event_kinds)
        self.split = kept

    @property
    def scale_type(self) -> str:
        return self.bijection.scale_type

    def _shift_logscale(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(shift, log s)`` from the network's output (kept for diagnostics and tests)."""
        return self.bijection.shift_logscale(h)
