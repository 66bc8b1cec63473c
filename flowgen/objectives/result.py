"""What an objective returns: the per-sample metric that is the loss, and named side terms."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass(frozen=True)
class Term:
    """A named scalar beside the main loss: ``weight * value`` joins the loss (``weight == 0``:
    only reported, e.g. an accuracy or an estimator's variance)."""

    value: Tensor  # [] scalar
    weight: float = 0.0


@dataclass(frozen=True)
class ObjectiveResult:
    """One batch's objective.

    ``metric`` names ``values`` (``"bpd"``, ``"nll"``): logged as ``{stage}/{metric}`` and the
    value a checkpoint monitors. ``values [B]`` is the per-sample loss in the metric's units (a
    batch's loss is their mean, plus the weighted ``terms``). ``terms`` are logged as
    ``{stage}/{name}``: the class head's ``class_loss`` and ``accuracy`` now; regularisers and
    estimator statistics later.
    """

    metric: str
    values: Tensor  # [B]
    terms: dict[str, Term] = field(default_factory=dict)

    def loss(self) -> Tensor:
        """The scalar to minimise: ``values.mean() + sum(weight * value)`` over weighted terms."""
        loss = self.values.mean()
        for term in self.terms.values():
            if term.weight:
                loss = loss + term.weight * term.value
        return loss
