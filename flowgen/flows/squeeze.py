"""Space-to-depth reshaping, the multi-scale architecture's only change of shape."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from flowgen.flows.base import Flow, check_image


class Squeeze(Flow):
    """``[B, C, H, W] -> [B, 4C, H/2, W/2]``: each 2x2 patch becomes 4 channels.

    A permutation of the entries, so ``logdet == 0``. Channel order is torch's
    ``pixel_unshuffle`` (channel-major: ``c * 4 + 2 * dy + dx``).
    """

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = shape
        return (4 * c, h // 2, w // 2)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(x, "Squeeze")
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs even height and width, got {h}x{w}: use an image "
                             f"size divisible by 2**levels, or fewer levels")
        return F.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_image(y, "Squeeze.inverse")
        if y.shape[1] % 4:
            raise ValueError(f"Squeeze.inverse needs channels divisible by 4, got {y.shape[1]}")
        return F.pixel_shuffle(y, 2), y.new_zeros(y.shape[0])
