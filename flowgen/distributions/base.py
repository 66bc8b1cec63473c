"""The contract every base distribution keeps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: A temperature: one number, or a tensor broadcastable to the event shape (e.g. per level).
Temperature = float | Tensor


class Distribution(nn.Module):
    """A density over samples of shape ``event_shape``.

    - ``log_prob(z, cond=None) -> [B]``: ``log p(z | cond)`` in nats, summed over the event;
    - ``sample(n, cond=None, temperature=1.0, generator=None) -> [n, *event_shape]``: draws at
      ``temperature`` ``T``, the base's noise scaled by ``T`` (``T = 1``: the distribution itself,
      ``T = 0``: its centre; Kingma & Dhariwal 2018, sec. 5.3). ``T`` may be a tensor that
      broadcasts to the event shape (one temperature per level of a multi-scale latent).

    ``cond`` is what the distribution is conditioned on (class labels ``[B]``, a context); an
    unconditional distribution ignores it. Samples come on the distribution's device and dtype
    (those of its parameters or buffers).
    """

    def __init__(self, event_shape: Sequence[int]):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        # a device/dtype anchor for parameter-free distributions (moves with .to())
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @property
    def num_dims(self) -> int:
        return math.prod(self.event_shape)

    def log_prob(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def sample(self, n: int, cond: Tensor | None = None, temperature: Temperature = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def _check_event(self, z: Tensor) -> None:
        if tuple(z.shape[1:]) != self.event_shape:
            raise ValueError(f"{type(self).__name__} is over samples of shape {self.event_shape}, "
                             f"got a batch of shape {tuple(z.shape)}")

    def _draw(self, n: int, generator: torch.Generator | None, uniform: bool = False) -> Tensor:
        check_sample_count(n)
        draw = torch.rand if uniform else torch.randn
        return draw(n, *self.event_shape, generator=generator, device=self._anchor.device,
                    dtype=self._anchor.dtype)


def check_sample_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"number of samples must be a positive integer, got {n!r}")


def check_temperature(temperature: Temperature) -> None:
    """A ``ValueError`` unless every temperature is a finite number ``>= 0``."""
    values = temperature if isinstance(temperature, Tensor) else None
    if values is None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"temperature must be a finite number >= 0 (typically 0.5-1.0), "
                             f"got {temperature!r}")
        values = torch.tensor(float(temperature))
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError(f"temperature must be a finite number >= 0 (typically 0.5-1.0), got "
                         f"{temperature if not isinstance(temperature, Tensor) else 'a tensor'}")


def summed(values: Tensor) -> Tensor:
    """Elementwise log-densities ``[B, ...]`` summed over the event: ``[B]``."""
    return values.flatten(1).sum(1)
