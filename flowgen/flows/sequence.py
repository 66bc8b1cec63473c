"""Composition of flows: a sequence of flows is itself a flow, trained under a memory mode."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow, compose
from flowgen.flows.memory import (
    MEMORY_MODES,
    check_invertible_in_training,
    checkpointed_forward,
    invertible_forward,
)


class FlowSequence(Flow):
    """Composition ``f_n ∘ ... ∘ f_1`` of flows; itself a flow.

    ``memory`` sets what training stores for backward (see :mod:`flowgen.flows.memory`):
    ``store`` (every activation, fastest), ``checkpoint`` (layer inputs only) or ``invertible``
    (only the output; inputs are recomputed by inversion). It changes neither the result nor the
    parameters, only memory and time, and applies only when autograd is recording in training.
    """

    def __init__(self, flows: Iterable[Flow], memory: str = "store"):
        super().__init__()
        self.flows = nn.ModuleList(flows)
        self.memory = memory
        for name, value in combined_capabilities(self.flows).items():
            setattr(self, name, value)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        for flow in self.flows:
            shape = flow.output_shape(shape)
        return shape

    @property
    def memory(self) -> str:
        return self._memory

    @memory.setter
    def memory(self, mode: str) -> None:
        if mode not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {list(MEMORY_MODES)}, got {mode!r}")
        if mode == "invertible":
            for flow in self.flows:
                check_invertible_in_training(flow)
        self._memory = mode

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self._memory != "store" and self.training and torch.is_grad_enabled():
            run = invertible_forward if self._memory == "invertible" else checkpointed_forward
            return run(list(self.flows), x, cond)
        return compose(self.flows, x, cond)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = y.new_zeros(y.shape[0])
        for flow in reversed(self.flows):
            y, ld = flow.inverse(y, cond)
            logdet = logdet + ld
        return y, logdet


def combined_capabilities(flows: Iterable[Flow]) -> dict:
    """The capabilities of a composition: the weakest of its parts'."""
    flows = list(flows)
    kinds = {f.inverse_kind for f in flows}
    tolerances = [f.inverse_tolerance for f in flows if f.inverse_tolerance is not None]
    shapes = [set(f.event_kinds) for f in flows]
    return {
        "logdet_kind": "estimated" if any(f.logdet_kind == "estimated" for f in flows)
        else "exact",
        "inverse_kind": "none" if "none" in kinds else
        "iterative" if "iterative" in kinds else "analytic",
        "inverse_tolerance": sum(tolerances) if tolerances else None,
        "invertible_in_training": all(f.invertible_in_training for f in flows),
        "event_kinds": tuple(sorted(set.intersection(*shapes))) if shapes else ("image",),
    }


def set_memory(module: torch.nn.Module, mode: str) -> None:
    """Make every :class:`~flowgen.flows.FlowSequence` inside ``module`` train with ``mode``
    (``store``, ``checkpoint`` or ``invertible``); a ``ValueError`` names the first layer that
    cannot (``invertible`` needs layers whose training-mode forward ``inverse`` undoes)."""
    if mode not in MEMORY_MODES:
        raise ValueError(f"memory must be one of {list(MEMORY_MODES)}, got {mode!r}")
    for sub in module.modules():
        if isinstance(sub, FlowSequence):
            sub.memory = mode
