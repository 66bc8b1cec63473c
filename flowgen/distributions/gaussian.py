"""Diagonal Gaussians with learned, class-conditional or context-conditional parameters: the
priors of Glow (the top prior, the split priors, their class-conditional forms)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal

from flowgen.distributions.base import Distribution, Temperature, check_temperature, summed


class ClassEmbedding(nn.Module):
    """Label ``[B]`` (int64) -> ``(mean, log_scale)`` offsets of shape ``[B, *param_shape]``,
    zero-initialised so a class-conditional prior starts as the unconditional one.
    ``param_shape``: ``(C, 1, 1)`` for per-channel offsets on images, ``(D,)`` on vectors."""

    def __init__(self, num_classes: int, channels: int, param_shape: Sequence[int] | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.param_shape = tuple(param_shape) if param_shape else (channels, 1, 1)
        self.embedding = nn.Embedding(num_classes, 2 * channels)
        nn.init.zeros_(self.embedding.weight)

    def forward(self, labels: Tensor) -> tuple[Tensor, Tensor]:
        if labels.dtype != torch.long or labels.dim() != 1:
            raise ValueError(f"class labels must be int64 of shape [B], got {labels.dtype} "
                             f"{tuple(labels.shape)}")
        # Checked on the CPU only: on a GPU it would stall every step on a host sync, and an
        # out-of-range index fails there anyway (a device-side assert in the embedding).
        if labels.numel() and not labels.is_cuda and (
                labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"class labels must lie in 0..{self.num_classes - 1}")
        mean, log_scale = self.embedding(labels).chunk(2, dim=1)
        shape = (labels.shape[0], *self.param_shape)
        return mean.reshape(shape), log_scale.reshape(shape)


class LocationScale(Distribution):
    """``z = mean + scale * eps``, ``eps ~ N(0, I)``, with ``(mean, log_scale)`` from
    :meth:`params` (broadcastable to ``[B, *event_shape]``).

    Besides ``log_prob``/``sample`` it offers the reparametrisation a flow folds in:
    :meth:`standardize` ``z -> eps`` with ``log|d eps / dz|``, and :meth:`unstandardize` back. A
    factor-out whose latent has this (conditional) prior can then hand a standard normal on:
    ``log p(z | h) = log N(eps; 0, I) + log|d eps / dz|`` exactly.
    """

    def params(self, z: Tensor, labels: Tensor | None = None, context: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    @staticmethod
    def _split_cond(cond: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """``cond`` as ``(labels, context)``: integer tensors are labels, float ones context."""
        if cond is None:
            return None, None
        return (cond, None) if not cond.is_floating_point() else (None, cond)

    def log_prob(self, z: Tensor, cond: Tensor | None = None, context: Tensor | None = None
                 ) -> Tensor:
        labels, ctx = self._split_cond(cond)
        mean, log_scale = self.params(z, labels, ctx if context is None else context)
        return summed(Normal(mean, log_scale.exp(), validate_args=False).log_prob(z))

    def sample(self, n: int, cond: Tensor | None = None, temperature: Temperature = 1.0,
               generator: torch.Generator | None = None, context: Tensor | None = None
               ) -> Tensor:
        check_temperature(temperature)
        eps = temperature * self._draw(n, generator)
        labels, ctx = self._split_cond(cond)
        return self.unstandardize(eps, labels, ctx if context is None else context)[0]

    def standardize(self, z: Tensor, labels: Tensor | None = None,
                    context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``z [B, *event] -> (eps, log|d eps/dz| [B])``."""
        mean, log_scale = self.params(z, labels, context)
        return (z - mean) * torch.exp(-log_scale), -log_scale_sum(log_scale, z)

    def unstandardize(self, eps: Tensor, labels: Tensor | None = None,
                      context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``eps [B, *event] -> (z, log|dz/d eps| [B])``."""
        mean, log_scale = self.params(eps, labels, context)
        return eps * log_scale.exp() + mean, log_scale_sum(log_scale, eps)


def log_scale_sum(log_scale: Tensor, z: Tensor) -> Tensor:
    """``sum log_scale`` over the event of ``z`` ``[B]``, for a ``log_scale`` that broadcasts to
    ``z``: summed over its own entries and multiplied by how often each repeats (``H W`` for a
    per-channel one), rather than expanded and summed."""
    repeats = z[0].numel() // log_scale[0].numel()
    return log_scale.expand(z.shape[0], *log_scale.shape[1:]).flatten(1).sum(1) * repeats


class DiagonalGaussian(LocationScale):
    """``N(mean, diag(exp(log_scale))^2)`` over ``event_shape`` with learned parameters of
    ``param_shape`` (broadcast over the event; e.g. ``(C, 1, 1)``: per channel, Glow's top prior),
    both starting at ``N(0, I)``. ``learned=False``: fixed at ``N(0, I)``. ``num_classes > 0``:
    labels given as ``cond`` add class-dependent offsets (the class-conditional top prior)."""

    def __init__(self, event_shape: Sequence[int], param_shape: Sequence[int] | None = None,
                 learned: bool = True, num_classes: int = 0):
        super().__init__(event_shape)
        shape = (1, *(param_shape or self.event_shape))
        self.learned = learned
        if learned:
            self.mean = nn.Parameter(torch.zeros(shape))
            self.log_scale = nn.Parameter(torch.zeros(shape))
        # class offsets per channel on images, per entry on vectors
        per_channel = len(shape) == 4
        channels = shape[1] if per_channel else math.prod(shape[1:])
        offsets = (channels, 1, 1) if per_channel else shape[1:]
        self.classes = ClassEmbedding(num_classes, channels, offsets) if num_classes else None

    def params(self, z: Tensor, labels: Tensor | None = None, context: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
        if self.learned:
            mean, log_scale = self.mean, self.log_scale
        else:
            mean = log_scale = z.new_zeros((1,) * z.dim())
        if self.classes is not None and labels is not None:
            dm, ds = self.classes(labels)
            mean, log_scale = mean + dm, log_scale + ds
        return mean, log_scale


class ConditionalDiagonalGaussian(LocationScale):
    """A diagonal Gaussian whose ``(mean, log_scale)`` are the two halves (along dim 1) of
    ``net(context)``: Glow's split prior ``p(z | h)``, with ``net`` a zero-initialised convolution
    of the kept half ``h`` (so it starts as ``N(0, I)``). ``net=None``: ``N(0, I)``.

    ``num_classes > 0`` adds label-dependent per-channel offsets. ``max_log_scale=b`` bounds the
    log-scale above, softly: ``softplus(b) - softplus(b - r)`` of the net's ``r`` (0 at 0, about
    ``r`` below, at most ``softplus(b)``), so sampling multiplies by at most ``e^softplus(b)``;
    sharp priors (very negative log-scales) are unaffected. ``None``: the plain ``r``.
    """

    def __init__(self, event_shape: Sequence[int], net: nn.Module | None = None,
                 num_classes: int = 0, max_log_scale: float | None = None):
        super().__init__(event_shape)
        self.net = net
        self.max_log_scale = max_log_scale
        channels = self.event_shape[0]
        param_shape = (channels, 1, 1) if len(self.event_shape) == 3 else self.event_shape
        self.classes = ClassEmbedding(num_classes, channels, param_shape) if num_classes else None

    def params(self, z: Tensor, labels: Tensor | None = None, context: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
        if self.net is not None:
            if context is None:
                raise ValueError(f"{type(self).__name__} is conditioned on a context: pass it")
            # the net may run in bf16 under autocast; the density stays in z's precision
            mean, log_scale = self.net(context).to(z.dtype).chunk(2, dim=1)
        else:
            mean = log_scale = z.new_zeros((1,) * z.dim())
        if self.classes is not None and labels is not None:
            dm, ds = self.classes(labels)
            mean, log_scale = mean + dm, log_scale + ds
        if self.max_log_scale is not None:
            b = self.max_log_scale
            log_scale = math.log1p(math.exp(b)) - F.softplus(b - log_scale)
        return mean, log_scale
