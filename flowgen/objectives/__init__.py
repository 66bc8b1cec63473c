"""Objectives in plain torch (no Lightning): what training minimises and evaluation reports.

``objective(model, batch, generator=None, noise_seed=None) -> ObjectiveResult``: a per-sample
metric that is the loss (``bpd`` for images, ``nll`` in nats for vectors) and named auxiliary
terms. Training (``flowgen.training``), ``sample.py mode=evaluate`` (``flowgen.sampling``) and the
benches call the same objects.
"""

from flowgen.objectives.base import LikelihoodObjective, Objective, event_dims
from flowgen.objectives.density import Density
from flowgen.objectives.dequantization import (
    Dequantizer,
    UniformDequantizer,
    postprocess,
    preprocess,
)
from flowgen.objectives.image_density import ImageDensity, bits_per_dim
from flowgen.objectives.result import ObjectiveResult, Term

__all__ = ["Density", "Dequantizer", "ImageDensity", "LikelihoodObjective", "Objective",
           "ObjectiveResult", "Term", "UniformDequantizer", "bits_per_dim", "event_dims",
           "postprocess", "preprocess"]
