"""Fixed channel (or feature) permutations (RealNVP's reversal, Glow's shuffle baseline)."""

from __future__ import annotations

import torch
from torch import Tensor

from flowgen.flows.base import Flow, check_event


class Permutation(Flow):
    """``y = x[:, perm]``: a fixed reordering of the channels of ``[B, C, H, W]`` or the features
    of ``[B, D]``, ``logdet == 0``."""

    event_kinds = ("vector", "image")

    def __init__(self, perm: Tensor):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        if not torch.equal(perm.sort().values, torch.arange(len(perm))):
            raise ValueError(f"not a permutation of 0..{len(perm) - 1}: {perm.tolist()}")
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", perm.argsort())

    @classmethod
    def reverse(cls, channels: int) -> Permutation:
        return cls(torch.arange(channels - 1, -1, -1))

    @classmethod
    def shuffle(cls, channels: int, generator: torch.Generator | None = None) -> Permutation:
        return cls(torch.randperm(channels, generator=generator))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(x, self.event_kinds, "Permutation")
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(y, self.event_kinds, "Permutation.inverse")
        return y[:, self.inverse_perm], y.new_zeros(y.shape[0])
