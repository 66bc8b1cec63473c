"""Continuous data (vectors): negative log-likelihood in nats."""

from __future__ import annotations

import torch
from torch import nn

from flowgen.objectives.base import LikelihoodObjective, split_batch
from flowgen.objectives.result import ObjectiveResult


class Density(LikelihoodObjective):
    """Batches ``(x float [B, *event], labels [B])`` -> ``-log p(x)`` in nats ``[B]`` (metric
    ``nll``). The data is already continuous: no dequantisation, so ``generator`` and
    ``noise_seed`` draw nothing here."""

    metric = "nll"

    def forward(self, model: nn.Module, batch, generator: torch.Generator | None = None,
                noise_seed: int | None = None) -> ObjectiveResult:
        x, labels = split_batch(batch)
        log_p, terms = self.log_prob_and_terms(model, x, labels)
        return ObjectiveResult(self.metric, -log_p, terms)
