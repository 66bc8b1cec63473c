"""RealNVP's masked affine couplings (Dinh et al. 2017, sec. 3.3-3.4): a binary mask ``b`` picks
the entries that pass through unchanged and condition the others,
``y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))``, ``logdet = sum (1 - b) * s``.

The log-scale is bounded, ``s = scale * tanh(raw)`` with a learned per-channel ``scale``; the
coupling network (:class:`ResNet`) starts at zero output, so every coupling starts as the
identity."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.flows.base import Flow, check_image
from flowgen.flows.resnet import ResNet


def checkerboard(height: int, width: int, parity: int, like: Tensor) -> Tensor:
    """``[1, 1, H, W]`` mask, 1 where ``(i + j) % 2 == parity`` (the entries kept), else 0."""
    i = torch.arange(height, device=like.device).view(-1, 1)
    j = torch.arange(width, device=like.device).view(1, -1)
    return ((i + j) % 2 == parity).to(like.dtype).view(1, 1, height, width)


def _check_parity(parity: int) -> None:
    if parity not in (0, 1):
        raise ValueError(f"mask parity must be 0 or 1, got {parity!r}")


class CheckerboardCoupling(Flow):
    """Spatial checkerboard-masked affine coupling on ``[B, C, H, W]``.

    The pixels with ``(i + j) % 2 == parity`` (all channels) are kept; the network sees the kept
    pixels (the others zeroed) plus the mask as an extra channel, and outputs a shift and a raw
    log-scale for every entry, of which only the masked-out ones are used. The mask is built
    from the input's size, so the layer has no shape-dependent state.
    """

    def __init__(self, channels: int, parity: int = 0, hidden_channels: int = 64,
                 res_blocks: int = 8):
        super().__init__()
        _check_parity(parity)
        self.parity = parity
        self.net = ResNet(channels + 1, 2 * channels, hidden_channels, res_blocks)
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def _shift_logscale(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image(x, type(self).__name__)
        b, _, h, w = x.shape
        mask = checkerboard(h, w, self.parity, x)
        net_in = torch.cat([x * mask, mask.expand(b, 1, h, w)], 1)
        shift, raw = self.net(net_in).to(x.dtype).chunk(2, 1)  # full precision under autocast
        free = 1 - mask
        return shift * free, self.scale * torch.tanh(raw) * free

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, log_s = self._shift_logscale(x)  # both zero on the kept entries
        return x * log_s.exp() + shift, log_s.flatten(1).sum(1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, log_s = self._shift_logscale(y)  # the kept entries of y are those of x
        return (y - shift) * torch.exp(-log_s), -log_s.flatten(1).sum(1)


class ChannelMaskedCoupling(Flow):
    """Channel-wise masked affine coupling on ``[B, C, H, W]``: with ``parity=0`` the first
    ``C // 2`` channels are kept and condition the last ``C - C // 2``; ``parity=1`` swaps the
    roles. (Masking whole channels equals slicing them, so the network only sees the kept ones.)
    """

    def __init__(self, channels: int, parity: int = 0, hidden_channels: int = 64,
                 res_blocks: int = 8):
        super().__init__()
        _check_parity(parity)
        if channels < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 channels, got {channels}: "
                             f"squeeze the input first")
        self.parity = parity
        self.half = channels // 2
        kept = self.half if parity == 0 else channels - self.half
        self.net = ResNet(kept, 2 * (channels - kept), hidden_channels, res_blocks)
        self.scale = nn.Parameter(torch.ones(1, channels - kept, 1, 1))

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image(x, type(self).__name__)
        lo, hi = x[:, :self.half], x[:, self.half:]
        return (lo, hi) if self.parity == 0 else (hi, lo)

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return torch.cat([kept, changed] if self.parity == 0 else [changed, kept], 1)

    def _shift_logscale(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self.net(kept).to(kept.dtype).chunk(2, 1)  # full precision under autocast
        return shift, self.scale * torch.tanh(raw)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        kept, x_b = self._split(x)
        shift, log_s = self._shift_logscale(kept)
        return self._join(kept, x_b * log_s.exp() + shift), log_s.flatten(1).sum(1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        kept, y_b = self._split(y)
        shift, log_s = self._shift_logscale(kept)
        return self._join(kept, (y_b - shift) * torch.exp(-log_s)), -log_s.flatten(1).sum(1)
