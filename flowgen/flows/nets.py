"""Small networks used inside flows (not invertible themselves), and how a conditioner takes a
context."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def with_context(x: Tensor, context: Tensor | None, context_features: int, net: str) -> Tensor:
    """A conditioner's input ``x`` with the float context ``[B, K]`` appended along dim 1:
    concatenated to vectors ``[B, D] -> [B, D + K]``, broadcast over height and width for images
    ``[B, C, H, W] -> [B, C + K, H, W]``. ``None`` (and ``K == 0``) leaves ``x`` as it is."""
    if context is None:
        return x
    if context_features == 0:
        raise ValueError(f"{net} was built without a context (context_features=0) but was given "
                         f"one of shape {tuple(context.shape)}")
    if context.dim() != 2 or context.shape != (x.shape[0], context_features):
        raise ValueError(f"{net} expects a context [B, {context_features}] for a batch of "
                         f"{x.shape[0]}, got {tuple(context.shape)}")
    if x.dim() == 4:
        context = context[:, :, None, None].expand(-1, -1, *x.shape[2:])
    return torch.cat([x, context.to(x.dtype)], 1)


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
    ``[B, in_channels, H, W] -> [B, out_channels, H, W]``. With ``context_features = K > 0``
    it is called ``net(x, context [B, K])``, the context broadcast over the image as ``K`` extra
    input channels."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int,
                 context_features: int = 0):
        first = nn.Conv2d(in_channels + context_features, hidden_channels, 3, padding=1)
        middle = nn.Conv2d(hidden_channels, hidden_channels, 1)
        for conv in (first, middle):
            nn.init.normal_(conv.weight, std=0.05)
            nn.init.zeros_(conv.bias)
        # In-place ReLUs: a conv's backward needs its input, not its output, so overwriting the
        # output is safe and saves one hidden-size activation per ReLU (memory and allocation).
        super().__init__(first, nn.ReLU(inplace=True), middle, nn.ReLU(inplace=True),
                         ZeroConv2d(hidden_channels, out_channels))
        self.context_features = context_features

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(with_context(x, context, self.context_features, "CouplingNet"))
