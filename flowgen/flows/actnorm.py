"""Activation normalisation (Kingma & Dhariwal 2018, sec. 3.1)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from flowgen.flows.base import Flow, check_event, per_sample


class ActNorm(Flow):
    """Per-channel affine map ``y = (x + bias) * exp(log_scale)`` on ``[B, C, H, W]``, or
    per-feature on vectors ``[B, C]`` (a vector is an image of one pixel).

    ``logdet = H * W * sum(log_scale)`` (``sum(log_scale)`` for vectors). Data-dependent
    initialisation: the first forward pass in training mode sets ``bias`` and ``log_scale`` so
    that the batch's output has zero mean and unit variance per channel (feature). The
    ``initialized`` flag is a buffer, so a loaded checkpoint never re-initialises. Under
    ``torch.distributed`` the statistics are those of the global batch, so every rank starts from
    identical parameters.
    """

    event_kinds = ("vector", "image")

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))
        # Python mirror of the buffer: reading a CUDA flag every step would sync the host.
        self._initialized_cache: bool | None = None

    @property
    def is_initialized(self) -> bool:
        if self._initialized_cache is None:
            self._initialized_cache = bool(self.initialized)
        return self._initialized_cache

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._initialized_cache = None

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set parameters from the per-channel mean and std of ``x`` (global batch under DDP)."""
        # float64 sums: E[x^2] - E[x]^2 cancels badly in float32 for large means.
        xd = x.detach().double().transpose(0, 1).flatten(1)
        stats = torch.stack([xd.sum(1), (xd * xd).sum(1),
                             torch.full_like(xd[:, 0], xd.shape[1])])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        total, total_sq, count = stats
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
        # A constant channel (zero variance) keeps unit scale instead of an enormous one.
        log_scale = torch.where(std > self.eps, -std.clamp_min(self.eps).log(),
                                torch.zeros_like(std))
        self.bias.copy_(-mean.view_as(self.bias))
        self.log_scale.copy_(log_scale.view_as(self.log_scale))
        self.initialized.fill_(True)
        self._initialized_cache = True

    def _logdet(self, x: Tensor) -> Tensor:
        return per_sample(self.log_scale.sum() * (x.shape[2] * x.shape[3]), x.shape[0])

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(x, self.event_kinds, "ActNorm")
        if self.training and not self.is_initialized:
            self.initialize(x)
        x4 = as_image(x)
        scale = self.log_scale.exp()
        # x * s + b * s: one pass over x (addcmul) instead of an add and a multiply.
        return torch.addcmul(self.bias * scale, x4, scale).view(x.shape), self._logdet(x4)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(y, self.event_kinds, "ActNorm.inverse")
        y4 = as_image(y)
        return (y4 * torch.exp(-self.log_scale) - self.bias).view(y.shape), -self._logdet(y4)


def as_image(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` as it is, vectors ``[B, D]`` as ``[B, D, 1, 1]`` (a view): per-channel
    layers then treat a vector's features as channels of a one-pixel image."""
    return x if x.dim() == 4 else x[:, :, None, None]
