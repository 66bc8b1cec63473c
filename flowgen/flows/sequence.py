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


def set_memory(module: torch.nn.Module, mode: str) -> None:
    """Make every :class:`~flowgen.flows.FlowSequence` inside ``module`` train with ``mode``
    (``store``, ``checkpoint`` or ``invertible``); a ``ValueError`` names the first layer that
    cannot (``invertible`` needs layers whose training-mode forward ``inverse`` undoes)."""
    if mode not in MEMORY_MODES:
        raise ValueError(f"memory must be one of {list(MEMORY_MODES)}, got {mode!r}")
    for sub in module.modules():
        if isinstance(sub, FlowSequence):
            sub.memory = mode
