"""MADE (Germain et al. 2015): a fully connected network made autoregressive by masking its
weights, the conditioner of the autoregressive flows (:mod:`.autoregressive`).

Every unit carries a degree: input ``i`` the position ``1..D`` of entry ``i`` in the order, a
hidden unit a degree in ``1..D-1`` (``0..D-1`` with a context). A weight survives its mask when
it connects a unit to one of degree at least as high (hidden layers) or strictly higher (the
output), so output ``j`` of entry ``i`` depends only on the entries earlier than ``i`` in the
order: the Jacobian of the outputs with respect to the inputs, permuted by the order, is
strictly lower-triangular.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowgen.flows.coupling import Coupling

#: ``MADE(order=...)``: the entries' autoregressive order, unless given as a permutation.
ORDERS = ("natural", "random")


def input_degrees(features: int, order: str | Sequence[int] = "natural", seed: int = 0
                  ) -> Tensor:
    """Degrees ``[D]`` of the inputs: ``order`` ``"natural"`` (entry ``i`` is ``i + 1``-th),
    ``"random"`` (a permutation drawn from ``seed``), or the permutation itself, ``order[k]`` the
    entry that comes ``k + 1``-th."""
    if isinstance(order, str):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {list(ORDERS)} or a permutation of the "
                             f"{features} entries, got {order!r}")
        generator = torch.Generator().manual_seed(seed)
        order = (torch.arange(features) if order == "natural"
                 else torch.randperm(features, generator=generator))
    order = torch.as_tensor(order, dtype=torch.long)
    if not torch.equal(order.sort().values, torch.arange(features)):
        raise ValueError(f"order must be a permutation of 0..{features - 1}, got "
                         f"{order.tolist()}")
    degrees = torch.empty(features, dtype=torch.long)
    degrees[order] = torch.arange(1, features + 1)
    return degrees


def hidden_degrees(units: int, features: int, context: bool = False) -> Tensor:
    """Degrees ``[units]`` cycling through ``1..D-1`` (every degree as often as the width
    allows, so no input loses its path to the outputs), from ``0`` with a ``context``: units
    seeing the context and no input, the only path by which it reaches the first entry's
    parameters."""
    low = 0 if context else min(1, features - 1)
    return low + torch.arange(units) % max(1, features - low)


class MaskedLinear(nn.Linear):
    """``[B, in_features] -> [B, out_features]``: a linear layer whose weight is multiplied by
    a fixed 0/1 ``mask`` ``[out, in]``, built from the units' degrees: ``out_degree >=
    in_degree`` (hidden layers) or ``>`` (``output=True``, the layer producing parameters)."""

    def __init__(self, in_degrees: Tensor, out_degrees: Tensor, output: bool = False):
        super().__init__(len(in_degrees), len(out_degrees))
        out, inp = out_degrees[:, None], in_degrees[None, :]
        self.register_buffer("mask", (out > inp if output else out >= inp).to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MaskedResidualBlock(nn.Module):
    """``h + W2 relu(W1 relu(h))`` on ``[B, H]``, both masked within one set of hidden degrees
    (nflows' residual MADE block); ``W2`` starts at zero, so the block starts as the identity."""

    def __init__(self, degrees: Tensor):
        super().__init__()
        self.first = MaskedLinear(degrees, degrees)
        self.second = MaskedLinear(degrees, degrees)
        nn.init.zeros_(self.second.weight)
        nn.init.zeros_(self.second.bias)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.second(F.relu(self.first(F.relu(h))))


class MADE(nn.Module):
    """``[B, D] -> h [B, P * D]``, ``P = params_per_entry`` parameters per entry, stacked in
    chunks along dim 1 as :mod:`~flowgen.flows.bijections` expects (chunk ``j``: parameter ``j``
    of all ``D`` entries), each depending only on the entries before it in ``order`` (see
    :func:`input_degrees`).

    ``hidden_layers`` masked ReLU layers of ``hidden_features`` units, or with ``residual`` a
    masked layer and ``hidden_layers`` :class:`MaskedResidualBlock`\\ s. The last layer starts
    at zero (``h = 0``: the flow using it starts as the identity). ``cond``: as
    :meth:`Coupling.context` (``context_features = K > 0``: a float context ``[B, K]``, or labels
    ``[B]`` embedded first with ``num_classes > 0``), added to the first layer unmasked: every
    output may depend on it.
    """

    # The conditioning contract of a coupling's network, shared rather than copied.
    context = Coupling.context
    _embed = Coupling._embed

    def __init__(self, features: int, params_per_entry: int = 2, hidden_features: int = 64,
                 hidden_layers: int = 2, residual: bool = False,
                 order: str | Sequence[int] = "natural", seed: int = 0,
                 context_features: int = 0, num_classes: int = 0):
        super().__init__()
        if features < 1 or params_per_entry < 1:
            raise ValueError(f"MADE needs features >= 1 and params_per_entry >= 1, got "
                             f"{features} and {params_per_entry}")
        if hidden_layers < 1 or hidden_features < 1:
            raise ValueError(f"MADE needs hidden_layers >= 1 and hidden_features >= 1, got "
                             f"{hidden_layers} and {hidden_features}")
        if num_classes and not context_features:
            raise ValueError("embedding labels needs context_features > 0 (the embedding's size)")
        self.features, self.params_per_entry = features, params_per_entry
        self.register_buffer("input_degrees", input_degrees(features, order, seed))
        hidden = hidden_degrees(hidden_features, features, context_features > 0)
        self.first = MaskedLinear(self.input_degrees, hidden)
        self.context_features = context_features
        self.context_layer = nn.Linear(context_features, hidden_features) \
            if context_features else None
        self.embedding = nn.Embedding(num_classes, context_features) if num_classes else None
        self.blocks = nn.ModuleList(
            MaskedResidualBlock(hidden) if residual else MaskedLinear(hidden, hidden)
            for _ in range(hidden_layers if residual else hidden_layers - 1))
        self.residual = residual
        self.last = MaskedLinear(hidden, self.input_degrees.repeat(params_per_entry),
                                 output=True)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    @property
    def order(self) -> Tensor:
        """The entries in autoregressive order: ``order[k]`` is the ``k + 1``-th."""
        return self.input_degrees.argsort()

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.features:
            raise ValueError(f"MADE was built for vectors [B, {self.features}], got a tensor of "
                             f"shape {tuple(x.shape)}")
        h = self.first(x)
        context = self.context(cond, x.shape[0])
        if context is not None:
            h = h + self.context_layer(context.to(h.dtype))
        for block in self.blocks:
            # A residual block activates its own input (pre-activation); a plain layer's is here.
            h = block(h) if self.residual else block(F.relu(h))
        return self.last(F.relu(h))
