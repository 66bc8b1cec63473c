"""Pixels <-> model space and bits per dimension: the math lives in :mod:`flowgen.objectives`
(below training and sampling); these names stay importable from here."""

from flowgen.objectives.dequantization import postprocess, preprocess
from flowgen.objectives.image_density import bits_per_dim

__all__ = ["bits_per_dim", "postprocess", "preprocess"]
