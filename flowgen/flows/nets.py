"""Small convolutional networks used inside flows (not invertible themselves)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ZeroConv2d(nn.Module):
    """3x3 convolution whose output starts at exactly zero, scaled by a learned
    ``exp(3 * log_scale)`` per output channel (Glow's ``Conv2dZeros``): ``[B, Cin, H, W] ->
    [B, Cout, H, W]``. Zero output makes the flow step that uses it start as the identity."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.log_scale = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        # The scale is folded into the (small) weights: no extra pass over the output.
        scale = torch.exp(3 * self.log_scale).view(-1)
        return F.conv2d(x, self.conv.weight * scale.view(-1, 1, 1, 1), self.conv.bias * scale,
                        padding=1)


class CouplingNet(nn.Sequential):
    """Glow's coupling network: conv3x3 -> ReLU -> conv1x1 -> ReLU -> zero-initialised conv3x3,
    ``[B, in_channels, H, W] -> [B, out_channels, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int):
        first = nn.Conv2d(in_channels, hidden_channels, 3, padding=1)
        middle = nn.Conv2d(hidden_channels, hidden_channels, 1)
        for conv in (first, middle):
            nn.init.normal_(conv.weight, std=0.05)
            nn.init.zeros_(conv.bias)
        # In-place ReLUs: a conv's backward needs its input, not its output, so overwriting the
        # output is safe and saves one hidden-size activation per ReLU (memory and allocation).
        super().__init__(first, nn.ReLU(inplace=True), middle, nn.ReLU(inplace=True),
                         ZeroConv2d(hidden_channels, out_channels))
