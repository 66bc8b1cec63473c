"""Base distributions: ``log_prob(z, cond)`` and ``sample(n, cond, temperature, generator)``.

Below :mod:`flowgen.flows` (they import nothing of flowgen): a flow's factor-out folds a
conditional distribution of this package into its map (see :class:`LocationScale`).
"""

from flowgen.distributions.base import Distribution
from flowgen.distributions.gaussian import (
    ClassEmbedding,
    ConditionalDiagonalGaussian,
    DiagonalGaussian,
    LocationScale,
)
from flowgen.distributions.standard import StandardLogistic, StandardNormal

__all__ = ["ClassEmbedding", "ConditionalDiagonalGaussian", "DiagonalGaussian", "Distribution",
           "LocationScale", "StandardLogistic", "StandardNormal"]
