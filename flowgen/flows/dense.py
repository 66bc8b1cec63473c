"""NICE's layers (Dinh et al. 2015): they act on each sample flattened to a vector of ``D``
entries but take and return any ``[B, ...]`` shape (images ``[B, C, H, W]`` in the models)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow, per_sample


class MLP(nn.Sequential):
    """``in -> hidden_layers x (Linear, ReLU) of width hidden_features -> Linear -> out``; the
    output layer starts at zero, so the coupling using it starts as the identity."""

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 1000,
                 hidden_layers: int = 5):
        if hidden_layers < 1 or hidden_features < 1:
            raise ValueError(f"MLP needs hidden_layers >= 1 and hidden_features >= 1, got "
                             f"{hidden_layers} and {hidden_features}")
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_features), nn.ReLU()]
            width = hidden_features
        out = nn.Linear(width, out_features)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        super().__init__(*layers, out)


class AdditiveMLPCoupling(Flow):
    """NICE's additive coupling on ``D = num_features`` flattened entries: with ``parity=0`` the
    even-indexed entries ``x_a`` are kept and ``x_b`` (odd) becomes ``x_b + m(x_a)``; ``parity=1``
    swaps the roles. Volume preserving: ``logdet == 0``."""

    def __init__(self, num_features: int, parity: int = 0, hidden_features: int = 1000,
                 hidden_layers: int = 5):
        super().__init__()
        if parity not in (0, 1):
            raise ValueError(f"partition parity must be 0 or 1, got {parity!r}")
        if num_features < 2:
            raise ValueError(f"AdditiveMLPCoupling needs at least 2 features, got {num_features}")
        self.num_features = num_features
        index = torch.arange(num_features)
        self.register_buffer("kept", index[parity::2], persistent=False)
        self.register_buffer("changed", index[1 - parity::2], persistent=False)
        self.net = MLP(len(self.kept), len(self.changed), hidden_features, hidden_layers)

    def _couple(self, x: Tensor, sign: float) -> Tensor:
        flat = x.flatten(1)
        if flat.shape[1] != self.num_features:
            raise ValueError(f"AdditiveMLPCoupling was built for {self.num_features} entries per "
                             f"sample, got {tuple(x.shape)}")
        shift = self.net(flat[:, self.kept]).to(flat.dtype)  # full precision under autocast
        changed = flat[:, self.changed] + sign * shift
        return flat.index_copy(1, self.changed, changed).view_as(x)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(x, 1.0), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(y, -1.0), y.new_zeros(y.shape[0])


class DiagonalScaling(Flow):
    """NICE's final diagonal scaling ``y = x * exp(s)`` with one learned ``s`` per entry of a
    sample of shape ``shape``: ``logdet = sum s``. Starts as the identity."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(shape)
        self.log_scale = nn.Parameter(torch.zeros(1, *self.shape))

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

