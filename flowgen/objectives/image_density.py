"""Images: bits per dimension of the dequantised pixels."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flowgen.objectives.base import LikelihoodObjective, event_dims, split_batch
from flowgen.objectives.dequantization import Dequantizer, UniformDequantizer
from flowgen.objectives.result import ObjectiveResult


def bits_per_dim(log_prob: Tensor, num_dims: int, n_bits: int = 8,
                 log_q: Tensor | float = 0.0) -> Tensor:
    """``-(log p(v) - log q(u | x) - D log 2^n_bits) / (D log 2)`` per sample, logs in nats.

    ``log p(v) - log q(u | x)`` bounds the log-probability of the dequantised ``(q + u)`` from
    below (Theis et al. 2016; Ho et al. 2019 for a learned ``q``). The flow sees ``v = (q + u) /
    2^n_bits - 0.5``: dividing by ``2^n_bits`` in each of the ``D`` dimensions multiplies densities
    by ``2^(n_bits D)`` (the shift adds nothing), so ``D log 2^n_bits`` converts ``log p(v)`` back
    to the density of ``q + u``, whose bins have width 1. Then ``log P(pixels) >= E[...]`` and a
    uniform ``p(v)`` costs exactly ``n_bits`` bits per dimension.
    """
    return -(log_prob - log_q - num_dims * n_bits * math.log(2)) / (num_dims * math.log(2))


class ImageDensity(LikelihoodObjective):
    """Batches ``(uint8 images [B, C, H, W], labels [B])`` -> bits per dimension ``[B]``
    (metric ``bpd``) of the images dequantised by ``dequantizer`` at ``n_bits``."""

    metric = "bpd"

    def __init__(self, n_bits: int = 8, dequantizer: Dequantizer | None = None,
                 classifier_weight: float = 0.0):
        super().__init__(classifier_weight)
        if not 1 <= n_bits <= 8:
            raise ValueError(f"n_bits must be between 1 and 8, got {n_bits}")
        self.n_bits = int(n_bits)
        self.dequantizer = dequantizer if dequantizer is not None else UniformDequantizer()

    def forward(self, model: nn.Module, batch, generator: torch.Generator | None = None,
                noise_seed: int | None = None) -> ObjectiveResult:
        pixels, labels = split_batch(batch)
        x, log_q = self.dequantizer(pixels, self.n_bits, generator=generator,
                                    noise_seed=noise_seed)
        log_p, terms = self.log_prob_and_terms(model, x, labels)
        return ObjectiveResult(self.metric, bits_per_dim(log_p, event_dims(model), self.n_bits,
                                                         log_q), terms)
