"""The multi-scale architecture (Dinh et al. 2017) as one flow: a latent is factored out at
every level, and the latents of all levels together are the output."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow
from flowgen.flows.sequence import FlowSequence, combined_capabilities
from flowgen.flows.split import Split


class MultiScale(Flow):
    """Images ``[B, C, H, W]`` -> all levels' latents, flattened and concatenated in level order,
    ``[B, D]`` (``D = C H W``); :meth:`unflatten` gives one latent per level.

    ``levels[i]`` is a :class:`FlowSequence`; every level but the last ends in a :class:`Split`,
    the second part of whose output is level ``i``'s latent and whose first part goes on to level
    ``i + 1``. The last level's output, after the optional ``top`` flow (a folded top prior), is
    the top latent. The priors are folded into the flow (see :class:`Split`), so a model puts a
    fixed base distribution (``N(0, I)``) on the output. ``features`` of :meth:`forward_features`
    is the top activation before ``top`` (e.g. for a class head).
    """

    event_kinds = ("image",)

    def __init__(self, levels: Sequence[FlowSequence], in_shape: Sequence[int],
                 top: Flow | None = None):
        super().__init__()
        self.levels = nn.ModuleList(levels)
        self.top = top
        self.in_shape = tuple(int(s) for s in in_shape)
        self.latent_shapes = self._latent_shapes()
        for name, value in combined_capabilities([*levels, *([top] if top else [])]).items():
            setattr(self, name, value)

    def _latent_shapes(self) -> list[tuple[int, ...]]:
        shapes, shape = [], self.in_shape
        for i, level in enumerate(self.levels):
            for flow in level.flows:
                shape = flow.output_shape(shape)
            if i < len(self.levels) - 1:
                split = level.flows[-1]
                if not isinstance(split, Split):
                    raise TypeError(f"level {i} must end in a Split: {type(split).__name__}")
                shapes.append((shape[0] - split.kept, *shape[1:]))
                shape = (split.kept, *shape[1:])
        shapes.append(tuple(shape))
        return shapes

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(shape),)

    def flatten(self, zs: Sequence[Tensor]) -> Tensor:
        """One latent per level -> ``[B, D]``."""
        if len(zs) != len(self.levels):
            raise ValueError(f"expected {len(self.levels)} latents (one per level), got {len(zs)}")
        for z, shape in zip(zs, self.latent_shapes, strict=True):
            if tuple(z.shape[1:]) != shape:
                raise ValueError(f"latent of shape {tuple(z.shape[1:])} where {shape} is needed")
        return torch.cat([z.flatten(1) for z in zs], 1)

    def unflatten(self, z: Tensor) -> list[Tensor]:
        """``[B, D]`` -> one latent ``[B, *latent_shapes[i]]`` per level (views)."""
        sizes = [math.prod(s) for s in self.latent_shapes]
        if z.dim() != 2 or z.shape[1] != sum(sizes):
            raise ValueError(f"expected latents [B, {sum(sizes)}], got {tuple(z.shape)}")
        return [part.view(-1, *shape) for part, shape in
                zip(z.split(sizes, 1), self.latent_shapes, strict=True)]

    def forward_features(self, x: Tensor, cond: Tensor | None = None
                         ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Data ``[B, C, H, W]`` -> (latents per level, ``log|det dz/dx|`` ``[B]``, the top
        activation before ``top``)."""
        zs, logdet = [], x.new_zeros(x.shape[0])
        last = len(self.levels) - 1
        for i, level in enumerate(self.levels):
            x, ld = level(x, cond)
            logdet = logdet + ld
            if i < last:
                kept = level.flows[-1].kept
                zs.append(x[:, kept:])
                x = x[:, :kept]
        features = x
        if self.top is not None:
            x, ld = self.top(x, cond)
            logdet = logdet + ld
        zs.append(x)
        return zs, logdet, features

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        zs, logdet, _ = self.forward_features(x, cond)
        return self.flatten(zs), logdet

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.inverse_latents(self.unflatten(z), cond)

    def inverse_latents(self, zs: Sequence[Tensor], cond: Tensor | None = None
                        ) -> tuple[Tensor, Tensor]:
        """Latents per level -> (data ``[B, C, H, W]``, ``log|det dx/dz|`` ``[B]``)."""
        self.flatten(zs)  # checks count and shapes
        x = zs[-1]
        logdet = x.new_zeros(x.shape[0])
        if self.top is not None:
            x, logdet = self.top.inverse(x, cond)
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                x = torch.cat([x, zs[i]], 1)
            x, ld = self.levels[i].inverse(x, cond)
            logdet = logdet + ld
        return x, logdet
