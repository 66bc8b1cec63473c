"""A flow used backwards: ``forward`` and ``inverse`` swapped (e.g. Kingma et al.'s 2016 inverse
autoregressive flow is a masked autoregressive layer used backwards)."""

from __future__ import annotations

from torch import Tensor

from flowgen.flows.base import Flow


class InverseFlow(Flow):
    """``forward = flow.inverse`` and ``inverse = flow.forward``: the same map read the other
    way, so its log-determinants swap too and keep the sign rule of :class:`Flow`.

    Capabilities follow the wrapped flow's: the same event kinds and round-trip tolerance, and
    the costs of the two directions swap (``forward_passes``/``inverse_passes`` where the flow
    declares them). A flow without an inverse cannot be wrapped; a flow that changes shapes
    (a squeeze) is refused by :meth:`output_shape`. A layer initialised from data on its first
    training-mode ``forward`` (ActNorm) would do so on this flow's ``inverse``: initialise it
    before wrapping it.
    """

    def __init__(self, flow: Flow):
        super().__init__()
        if flow.inverse_kind == "none":
            raise ValueError(f"{type(flow).__name__} has no inverse, so InverseFlow has no "
                             f"forward: wrap a flow with an inverse")
        self.flow = flow
        self.logdet_kind = flow.logdet_kind
        self.inverse_kind = flow.inverse_kind
        self.inverse_tolerance = flow.inverse_tolerance
        # Training mode changes the wrapped flow's forward (batch statistics), now our inverse.
        self.invertible_in_training = flow.invertible_in_training
        self.event_kinds = tuple(flow.event_kinds)

    @property
    def forward_passes(self) -> int:
        """Network evaluations per ``forward`` call: the wrapped flow's inverse's."""
        return getattr(self.flow, "inverse_passes", 1)

    @property
    def inverse_passes(self) -> int:
        """Network evaluations per ``inverse`` call: the wrapped flow's forward's."""
        return getattr(self.flow, "forward_passes", 1)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.flow.output_shape(shape) != tuple(shape):
            raise ValueError(f"InverseFlow of {type(self.flow).__name__}, which changes shapes, "
                             f"cannot tell its output shape: wrap shape-preserving flows only")
        return tuple(shape)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.flow.inverse(x, cond)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.flow(y, cond)
