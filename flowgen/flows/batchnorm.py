"""Batch normalisation as an invertible layer (Dinh et al. 2017, sec. 3.7)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.flows.actnorm import as_image
from flowgen.flows.base import Flow, check_event, per_sample


class BatchNormFlow(Flow):
    """Per-channel ``y = (x - mean) / sqrt(var + eps) * exp(log_gamma) + beta`` on
    ``[B, C, H, W]``, ``logdet = H W sum_c (log_gamma_c - 0.5 log(var_c + eps))``; per feature
    on vectors ``[B, C]`` (``H = W = 1``: statistics over the batch).

    - **training mode**: ``mean``/``var`` are the batch's per-channel statistics (biased
      variance over batch, height and width; gradients flow through them, as in ordinary batch
      norm). The log-determinant treats them as constants, as in the paper: it is the exact
      per-sample Jacobian of the affine map with the batch statistics frozen. The running
      statistics are updated with ``momentum``; the first training batch sets them outright
      (like ActNorm's data-dependent init), so evaluation is sensible from the first step.
    - **eval mode**: the running statistics; the layer is then an exact per-sample bijection.
    - ``inverse`` always uses the running statistics (a batch of latents has no data statistics
      to invert with), so in training mode ``inverse(forward(x))`` is not ``x``; sample and check
      round trips in eval mode.

    Under ``torch.distributed`` the batch statistics are per rank (like ``nn.BatchNorm2d``).
    """

    invertible_in_training = False  # batch statistics: see inverse
    event_kinds = ("vector", "image")

    def __init__(self, channels: int, momentum: float = 0.05, eps: float = 1e-5):
        super().__init__()
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.momentum = momentum
        self.eps = eps
        self.log_gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("running_mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("running_var", torch.ones(1, channels, 1, 1))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor) -> None:
        # weight 1 on the first batch, momentum afterwards, without a host sync
        weight = torch.where(self.num_batches_tracked == 0, 1.0, self.momentum).to(mean.dtype)
        self.running_mean.lerp_(mean, weight)
        self.running_var.lerp_(var, weight)
        self.num_batches_tracked.add_(1)

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training:
            return self.running_mean, self.running_var
        mean = x.mean((0, 2, 3), keepdim=True)
        var = (x - mean).pow(2).mean((0, 2, 3), keepdim=True)
        self._update_running(mean.detach(), var.detach())
        return mean, var

    def _log_mult(self, var: Tensor) -> Tensor:
        return self.log_gamma - 0.5 * torch.log(var + self.eps)

    def _logdet(self, log_mult: Tensor, x: Tensor) -> Tensor:
        return per_sample(log_mult.sum() * (x.shape[2] * x.shape[3]), x.shape[0])

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(x, self.event_kinds, "BatchNormFlow")
        x4 = as_image(x)
        mean, var = self._stats(x4)
        log_mult = self._log_mult(var)
        y = (x4 - mean) * log_mult.exp() + self.beta
        return y.view(x.shape), self._logdet(log_mult, x4)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_event(y, self.event_kinds, "BatchNormFlow.inverse")
        y4 = as_image(y)
        log_mult = self._log_mult(self.running_var)
        x = (y4 - self.beta) * torch.exp(-log_mult) + self.running_mean
        return x.view(y.shape), -self._logdet(log_mult, y4)
