"""The objective interface, and what every likelihood objective shares: the model's dimensions,
its conditioning, and the class head's auxiliary terms.

The model is any density model with ``log_prob(x, cond) -> [B]`` in nats; a class-conditional one
(``num_classes > 0``) also has ``log_prob_and_features(x, cond) -> (log_p [B], features)`` and
``class_logits(features) -> [B, num_classes]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowgen.objectives.result import ObjectiveResult, Term


def event_dims(model: nn.Module) -> int:
    """``D``, the number of dimensions of one sample the model was built for: from its
    ``event_shape``, else the older ``in_shape``/``num_dims``."""
    for name in ("event_shape", "in_shape"):
        shape = getattr(model, name, None)
        if shape is not None:
            return math.prod(shape)
    dims = getattr(model, "num_dims", None)
    if dims is None:
        raise TypeError(f"{type(model).__name__} says neither its event_shape nor its num_dims")
    return int(dims)


def is_conditional(model: nn.Module) -> bool:
    return getattr(model, "num_classes", 0) > 0


def split_batch(batch: Sequence[Tensor] | Tensor) -> tuple[Tensor, Tensor | None]:
    """``(data, labels or None)`` of a batch ``(data [B, ...], labels [B], ...)`` or a tensor."""
    if isinstance(batch, Tensor):
        return batch, None
    return batch[0], (batch[1] if len(batch) > 1 else None)


class Objective(nn.Module):
    """``objective(model, batch, generator=None, noise_seed=None) -> ObjectiveResult``.

    ``generator`` draws whatever noise the objective needs (dequantisation, estimators);
    ``noise_seed`` asks for its fixed, seeded noise instead (deterministic validation). An
    ``nn.Module``, so learned parts (a variational dequantiser) train and move with the model.
    """

    metric: str = ""

    def forward(self, model: nn.Module, batch, generator: torch.Generator | None = None,
                noise_seed: int | None = None) -> ObjectiveResult:
        raise NotImplementedError


class LikelihoodObjective(Objective):
    """Shared by the maximum-likelihood objectives: ``log p(x | labels)`` and, for a
    class-conditional model with ``classifier_weight > 0``, the class head's terms (the Glow
    paper's generative + discriminative objective): ``class_loss`` (cross-entropy, weighted)
    and ``accuracy`` (reported only)."""

    def __init__(self, classifier_weight: float = 0.0):
        super().__init__()
        if classifier_weight < 0:
            raise ValueError(f"classifier_weight must be >= 0, got {classifier_weight}")
        self.classifier_weight = float(classifier_weight)

    def log_prob_and_terms(self, model: nn.Module, x: Tensor, labels: Tensor | None
                           ) -> tuple[Tensor, dict[str, Term]]:
        """``(log p(x) [B] in nats, terms)``; labels are the ``cond`` of a conditional model."""
        conditional = is_conditional(model)
        cond = labels if conditional else None
        if not (conditional and self.classifier_weight > 0):
            return model.log_prob(x, cond), {}
        log_p, features = model.log_prob_and_features(x, cond)
        logits = model.class_logits(features)
        class_loss = nn.functional.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return log_p, {"class_loss": Term(class_loss, self.classifier_weight),
                       "accuracy": Term(accuracy)}
