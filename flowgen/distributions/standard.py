"""Fixed base distributions: the standard normal and the standard logistic (NICE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Normal

from flowgen.distributions.base import Distribution, Temperature, check_temperature, summed


class StandardNormal(Distribution):
    """``N(0, I)`` over ``event_shape``; at temperature ``T`` it samples ``N(0, T^2 I)``."""

    def log_prob(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        self._check_event(z)
        return summed(Normal(z.new_zeros(()), z.new_ones(()), validate_args=False).log_prob(z))

    def sample(self, n: int, cond: Tensor | None = None, temperature: Temperature = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        check_temperature(temperature)
        return temperature * self._draw(n, generator)


class StandardLogistic(Distribution):
    """The standard logistic over ``event_shape`` (NICE's prior): ``log p(z) = -sum(softplus(z)
    + softplus(-z))``; at temperature ``T`` it samples ``T * logit(u)``, ``u ~ U(0, 1)``.
    (torch.distributions has no logistic; its sigmoid-transformed uniform loses the tails.)"""

    def log_prob(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        self._check_event(z)
        return summed(-(F.softplus(z) + F.softplus(-z)))

    def sample(self, n: int, cond: Tensor | None = None, temperature: Temperature = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        check_temperature(temperature)
        u = self._draw(n, generator, uniform=True)
        u = u.clamp_min(torch.finfo(u.dtype).tiny)  # rand is in [0, 1): only 0 needs care
        return temperature * (torch.log(u) - torch.log1p(-u))
