"""The one contract every invertible layer keeps."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


class Flow(nn.Module):
    """An invertible map with a tractable log-determinant.

    Direction and sign rule (the same for every subclass):

    - ``forward(x, cond) -> (y, logdet)`` maps data to latent and returns ``log|det dy/dx|``;
    - ``inverse(y, cond) -> (x, logdet)`` maps latent to data and returns ``log|det dx/dy|``,
      i.e. the negation of the forward log-determinant at the matching point.

    ``logdet`` is always a ``[batch]`` tensor; ``inverse(forward(x)[0])[0] == x``. ``cond`` is an
    optional conditioning input (e.g. a class label) that layers may ignore.
    """

    # Capabilities, declared per class; memory modes, sampling and the contract test read them.
    #: ``"exact"`` log-determinant, or ``"estimated"`` (an unbiased stochastic estimate).
    logdet_kind: str = "exact"
    #: ``"analytic"`` inverse, ``"iterative"`` (within :attr:`inverse_tolerance`) or ``"none"``.
    inverse_kind: str = "analytic"
    #: For an iterative inverse: the bound on ``|inverse(forward(x)) - x|`` it iterates to.
    inverse_tolerance: float | None = None
    #: False for layers whose training-mode forward is not inverted by ``inverse`` (batch
    #: statistics): they cannot be trained with ``memory=invertible``.
    invertible_in_training: bool = True
    #: The batch shapes the layer accepts: ``"vector"`` ``[B, D]``, ``"image"`` ``[B, C, H, W]``.
    event_kinds: tuple[str, ...] = ("image",)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one output sample for an input sample of ``shape`` (most layers keep
        it; a squeeze does not)."""
        return shape

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def reconstruct(self, y: Tensor, cond: Tensor | None = None
                    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Backward without stored activations (:mod:`flowgen.flows.memory`): the input
        recomputed from the output ``y``, as new leaves whose concatenation along channels is
        ``x``, and ``forward(x)`` recomputed from them with autograd recording. Layers that
        can share work between the two (couplings: one network evaluation) override it."""
        with torch.no_grad():
            x, _ = self.inverse(y, cond)
        x = x.detach().requires_grad_()
        y_again, logdet = self(x, cond)
        return [x], y_again, logdet


def compose(flows: Iterable[Flow], x: Tensor, cond: Tensor | None, call=None
            ) -> tuple[Tensor, Tensor]:
    """``flows`` applied in order to ``x`` -> ``(y, summed logdet)``; ``call(flow, x, cond)``
    replaces ``flow(x, cond)`` (e.g. gradient checkpointing)."""
    logdet = x.new_zeros(x.shape[0])
    for flow in flows:
        x, ld = flow(x, cond) if call is None else call(flow, x, cond)
        logdet = logdet + ld
    return x, logdet


def check_image(x: Tensor, layer: str) -> None:
    """Raise a clear error unless ``x`` is an image batch ``[B, C, H, W]``."""
    if x.dim() != 4:
        raise ValueError(f"{layer} expects images [B, C, H, W], got a tensor of shape "
                         f"{tuple(x.shape)}")


def per_sample(value: Tensor, batch: int) -> Tensor:
    """Broadcast a log-determinant that is the same for every sample to shape ``[batch]``."""
    return value.expand(batch) if value.dim() == 0 else value.reshape(batch)


#: ``event_kinds`` -> (the batch tensor's number of dimensions, how error messages name it).
EVENT_KINDS = {"vector": (2, "vectors [B, D]"), "image": (4, "images [B, C, H, W]")}


def check_event(x: Tensor, kinds: tuple[str, ...], layer: str) -> None:
    """Raise a clear error unless ``x`` is a batch of one of ``kinds`` (a layer's
    ``event_kinds``): ``"vector"`` ``[B, D]`` or ``"image"`` ``[B, C, H, W]``."""
    if any(x.dim() == EVENT_KINDS[kind][0] for kind in kinds):
        return
    wanted = " or ".join(EVENT_KINDS[kind][1] for kind in kinds)
    raise ValueError(f"{layer} expects {wanted}, got a tensor of shape {tuple(x.shape)}")
