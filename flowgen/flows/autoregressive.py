"""Masked autoregressive flows (Papamakarios et al. 2017): an elementwise bijection of each
entry, its parameters computed by a :class:`~flowgen.flows.made.MADE` from the entries before it.

The density direction (``forward``, data -> latent) needs one MADE pass: every ``x`` is known.
The inverse needs ``D`` sequential passes, one per degree, since entry ``k`` of ``x`` can be
recovered only once the entries before it are. Wrapped in an
:class:`~flowgen.flows.inverse.InverseFlow` the costs swap: Kingma et al.'s (2016) inverse
autoregressive flow, sampling in one pass per layer and evaluating densities in ``D``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from flowgen.flows.base import Flow, check_event
from flowgen.flows.bijections import Bijection
from flowgen.flows.made import MADE


class MaskedAutoregressive(Flow):
    """``y_i = bijection(x_i, made(x_<i, cond)_i)`` on vectors ``[B, D]``, ``<i`` the entries
    before ``i`` in the MADE's order; ``logdet`` the bijection's log-derivatives summed over the
    entries (the Jacobian is triangular in that order).

    ``forward`` (density) takes one MADE pass; ``inverse`` (sampling) ``D`` passes, in the order
    of the degrees: :attr:`forward_passes` and :attr:`inverse_passes` declare it. The inverse is
    exact, not an approximation, hence ``inverse_kind = "analytic"``. ``cond``: as the MADE's
    (see :class:`~flowgen.flows.made.MADE`). The MADE's output is cast to ``x``'s dtype: under
    autocast only the network runs in low precision (as in a coupling).
    """

    event_kinds = ("vector",)

    def __init__(self, made: MADE, bijection: Bijection):
        super().__init__()
        if made.params_per_entry != bijection.params_per_entry:
            raise ValueError(f"the MADE gives {made.params_per_entry} parameters per entry, the "
                             f"{type(bijection).__name__} needs {bijection.params_per_entry}: "
                             f"build the MADE with params_per_entry="
                             f"{bijection.params_per_entry}")
        self.bijection = bijection
        self.made = made

    @classmethod
    def build(cls, features: int, bijection: Bijection | Callable[[int], Bijection],
              hidden_features: int = 64, hidden_layers: int = 2, residual: bool = False,
              order: str | Sequence[int] = "natural", seed: int = 0, context_features: int = 0,
              num_classes: int = 0) -> MaskedAutoregressive:
        """A layer on ``[B, features]``: ``bijection`` is one, or ``bijection(features)`` builds
        it (e.g. :class:`~flowgen.flows.bijections.TanhAffineBijection`); the rest are the
        :class:`~flowgen.flows.made.MADE`'s options."""
        if not isinstance(bijection, Bijection):
            bijection = bijection(features)
        made = MADE(features, bijection.params_per_entry, hidden_features, hidden_layers,
                    residual, order, seed, context_features, num_classes)
        return cls(made, bijection)

    @property
    def features(self) -> int:
        return self.made.features

    @property
    def forward_passes(self) -> int:
        """MADE evaluations per ``forward`` call."""
        return 1

    @property
    def inverse_passes(self) -> int:
        """MADE evaluations per ``inverse`` call: one per entry."""
        return self.features

    def _check(self, x: Tensor, layer: str) -> None:
        check_event(x, self.event_kinds, layer)
        if x.shape[1] != self.features:
            raise ValueError(f"{layer} was built for vectors [B, {self.features}], got a tensor "
                             f"of shape {tuple(x.shape)}")

    def _params(self, x: Tensor, cond: Tensor | None) -> Tensor:
        return self.made(x, cond).to(x.dtype)  # full precision under autocast

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x, type(self).__name__)
        y, logabsdet = self.bijection(x, self._params(x, cond))
        return y, logabsdet.sum(1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y, type(self).__name__ + ".inverse")
        degrees = self.made.input_degrees
        x = torch.zeros_like(y)
        # Pass k fixes the entry of degree k: its parameters depend only on entries of lower
        # degree, all exact by then. At the last pass every parameter is exact, so that pass's
        # log-derivatives are the inverse's.
        for degree in range(1, self.features + 1):
            x_pass, logabsdet = self.bijection.inverse(y, self._params(x, cond))
            x = torch.where(degrees == degree, x_pass, x)
        return x, logabsdet.sum(1)
