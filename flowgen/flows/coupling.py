"""Coupling layers (Dinh et al. 2015, 2017; Kingma & Dhariwal 2018): half the channels are
transformed by a function of the other half, so the Jacobian is triangular."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from flowgen.flows.base import Flow, check_image
from flowgen.flows.nets import CouplingNet


class _ChannelCoupling(Flow):
    """Splits ``[B, C, H, W]`` into ``x_a = x[:, :C//2]`` (passed through, conditions the net)
    and ``x_b = x[:, C//2:]`` (transformed elementwise)."""

    net_outputs_per_channel = 1

    def __init__(self, channels: int, hidden_channels: int = 512):
        super().__init__()
        if channels < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 channels, got {channels}: "
                             f"squeeze the input first")
        self.split = channels // 2
        self.net = CouplingNet(self.split, self.net_outputs_per_channel * (channels - self.split),
                               hidden_channels)

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        check_image(x, type(self).__name__)
        x_a, x_b = x[:, :self.split], x[:, self.split:]
        # Under autocast the net runs in bf16/fp16; the coupling itself stays in x's dtype, so
        # the map and its log-determinant are computed (and inverted) in full precision.
        return x_a, x_b, self.net(x_a).to(x.dtype)


class AdditiveCoupling(_ChannelCoupling):
    """``y_b = x_b + t(x_a)``: volume preserving, ``logdet == 0`` (NICE)."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b, shift = self._halves(x)
        return torch.cat([x_a, x_b + shift], 1), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y_a, y_b, shift = self._halves(y)
        return torch.cat([y_a, y_b - shift], 1), y.new_zeros(y.shape[0])


class AffineCoupling(_ChannelCoupling):
    """``y_b = (x_b + t(x_a)) * s(x_a)`` with ``s = sigmoid(h + 2)`` (Glow's bounded scale,
    ``s(0) ≈ 0.88``); ``logdet = sum log s``, computed as ``logsigmoid`` for accuracy."""

    net_outputs_per_channel = 2

    def _shift_logscale(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x_a, x_b, h = self._halves(x)
        shift, raw = h.chunk(2, dim=1)
        return x_a, x_b, shift, F.logsigmoid(raw + 2.0)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b, shift, log_s = self._shift_logscale(x)
        y_b = (x_b + shift) * log_s.exp()
        return torch.cat([x_a, y_b], 1), log_s.flatten(1).sum(1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y_a, y_b, shift, log_s = self._shift_logscale(y)
        x_b = y_b * (-log_s).exp() - shift
        return torch.cat([y_a, x_b], 1), -log_s.flatten(1).sum(1)

