"""The Gaussian prior of the top-level latent: learned, optionally class-conditional."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow, check_image


class ClassEmbedding(nn.Module):
    """Label ``[B]`` (int64) -> per-channel ``(mean, log_scale)`` offsets ``[B, C, 1, 1]`` each,
    zero-initialised so a conditional prior starts as the unconditional one."""

    def __init__(self, num_classes: int, channels: int):
        super().__init__()
        self.num_classes = num_classes
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
        mean, log_scale = self.embedding(labels)[:, :, None, None].chunk(2, dim=1)
        return mean, log_scale


class LearnedPrior(Flow):
    """Standardise ``[B, C, H, W]`` under a Gaussian ``N(mean, scale^2)`` per channel:
    ``y = (z - mean) / scale``, ``logdet = -H W sum(log_scale)``; its output is standard-normal
    under the model.

    ``learned``: mean and log-scale are parameters starting at ``N(0, 1)`` (Glow's
    ``learn_top``); otherwise the prior is fixed at ``N(0, 1)`` and the layer is the identity.
    ``num_classes > 0``: a class embedding adds label-dependent offsets when ``cond`` (labels
    ``[B]``) is given; ``cond=None`` uses the unconditional prior.
    """

    def __init__(self, channels: int, learned: bool = True, num_classes: int = 0):
        super().__init__()
        self.learned = learned
        if learned:
            self.mean = nn.Parameter(torch.zeros(1, channels, 1, 1))
            self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.classes = ClassEmbedding(num_classes, channels) if num_classes else None

    def _params(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        zeros = x.new_zeros(1, x.shape[1], 1, 1)
        mean, log_scale = (self.mean, self.log_scale) if self.learned else (zeros, zeros)
        if self.classes is not None and cond is not None:
            dm, ds = self.classes(cond)
            mean, log_scale = mean + dm, log_scale + ds
        return mean, log_scale

    def _logdet(self, x: Tensor, log_scale: Tensor) -> Tensor:
        per_sample = log_scale.expand(x.shape[0], -1, -1, -1).flatten(1).sum(1)
        return -per_sample * (x.shape[2] * x.shape[3])

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(x, "LearnedPrior")
        mean, log_scale = self._params(x, cond)
        return (x - mean) * torch.exp(-log_scale), self._logdet(x, log_scale)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(y, "LearnedPrior.inverse")
        mean, log_scale = self._params(y, cond)
        return y * log_scale.exp() + mean, -self._logdet(y, log_scale)
