"""RealNVP's coupling network: a residual network of weight-normalised convolutions (Dinh et al.
2017, sec. 3.7; Salimans & Kingma 2016). Not invertible itself."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from flowgen.flows.nets import with_context


def wn_conv(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Conv2d:
    """A same-padded convolution with weight normalisation ``W = g v / ||v||`` (per output
    channel), zero bias."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    nn.init.zeros_(conv.bias)
    return weight_norm(conv)


class ResBlock(nn.Module):
    """``x + conv3x3(ReLU(conv3x3(ReLU(x))))`` (pre-activation residual block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), wn_conv(channels, channels), nn.ReLU(),
                                  wn_conv(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNet(nn.Module):
    """``[B, in_channels, H, W] -> [B, out_channels, H, W]``: conv3x3 to ``hidden_channels``,
    ``res_blocks`` residual blocks, ReLU, conv3x3 out. The output convolution's gain ``g`` starts
    at zero, so the network starts as the constant 0 (and the coupling using it as the identity)
    while ``v`` keeps a random direction (``v = 0`` would make ``v / ||v||`` undefined).

    ``context_features = K > 0``: called ``net(x, context [B, K])``, the context broadcast over
    the image as ``K`` extra input channels."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64,
                 res_blocks: int = 8, context_features: int = 0):
        super().__init__()
        if res_blocks < 0 or hidden_channels < 1:
            raise ValueError(f"ResNet needs hidden_channels >= 1 and res_blocks >= 0, got "
                             f"{hidden_channels} and {res_blocks}")
        self.context_features = context_features
        self.inp = wn_conv(in_channels + context_features, hidden_channels)
        self.blocks = nn.Sequential(*(ResBlock(hidden_channels) for _ in range(res_blocks)))
        self.out = wn_conv(hidden_channels, out_channels)
        with torch.no_grad():
            self.out.parametrizations.weight.original0.zero_()

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        x = with_context(x, context, self.context_features, "ResNet")
        return self.out(torch.relu(self.blocks(self.inp(x))))
