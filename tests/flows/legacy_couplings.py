"""Today's four coupling classes, copied verbatim from flowgen/flows/{coupling,masks,dense}.py
as they were before the one :class:`~flowgen.flows.Coupling` (commit 2dbd509), so that
tests/flows/test_coupling_legacy.py can hold the new layers to them bit for bit. Test-only: never
imported by flowgen."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowgen.flows.base import Flow, check_image
from flowgen.flows.dense import MLP
from flowgen.flows.nets import CouplingNet
from flowgen.flows.resnet import ResNet

#: ``AffineCoupling(scale=...)``: how the net's raw output becomes the log-scale.
SCALES = ("sigmoid", "bounded")
BOUNDED_MIN_LOG_SCALE = 2.0


class OldChannelCoupling(Flow):
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

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image(x, type(self).__name__)
        return x[:, :self.split], x[:, self.split:]

    def _net(self, x_a: Tensor, dtype: torch.dtype) -> Tensor:
        # Under autocast the net runs in bf16/fp16; the coupling itself stays in x's dtype, so
        # the map and its log-determinant are computed (and inverted) in full precision.
        return self.net(x_a).to(dtype)

    def _couple(self, x_b: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(y_b, logdet)`` from ``x_b`` and the net's output ``h``."""
        raise NotImplementedError

    def _uncouple(self, y_b: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_b, logdet of the inverse)`` from ``y_b`` and the net's output ``h``."""
        raise NotImplementedError

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b = self._halves(x)
        y_b, logdet = self._couple(x_b, self._net(x_a, x.dtype))
        return torch.cat([x_a, y_b], 1), logdet

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y_a, y_b = self._halves(y)
        x_b, logdet = self._uncouple(y_b, self._net(y_a, y.dtype))
        return torch.cat([y_a, x_b], 1), logdet

    def reconstruct(self, y: Tensor, cond: Tensor | None = None
                    ) -> tuple[list[Tensor], Tensor, Tensor]:
        # x_a == y_a, so one evaluation of the net serves both the inversion and the graph.
        y_a, y_b = self._halves(y.detach())
        x_a = y_a.requires_grad_()
        h = self._net(x_a, y.dtype)
        with torch.no_grad():
            x_b = self._uncouple(y_b, h.detach())[0]
        x_b.requires_grad_()
        y_b, logdet = self._couple(x_b, h)
        return [x_a, x_b], torch.cat([x_a, y_b], 1), logdet


class OldAdditiveCoupling(OldChannelCoupling):
    """``y_b = x_b + t(x_a)``: volume preserving, ``logdet == 0`` (NICE)."""

    def _couple(self, x_b: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return x_b + h, x_b.new_zeros(x_b.shape[0])

    def _uncouple(self, y_b: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return y_b - h, y_b.new_zeros(y_b.shape[0])




class OldAffineCoupling(OldChannelCoupling):
    """``y_b = (x_b + t(x_a)) * s(x_a)``; ``logdet = sum log s``.

    ``scale="sigmoid"``: ``s = sigmoid(h + 2)`` (Glow's, ``s(0) ≈ 0.88``), in ``(0, 1)``: the
    inverse divides by ``s``, unbounded when a latent the net never saw drives ``h -> -inf``
    (samples then overflow to inf/NaN). ``scale="bounded"``: the same sigmoid lifted off zero,
    ``s = m + (1 - m) sigmoid(h + 2)`` with ``m = exp(-BOUNDED_MIN_LOG_SCALE)``, so ``s`` lies in
    ``(m, 1)`` and the inverse amplifies by at most ``1/m``; where ``sigmoid >> m`` (where data
    lives) the two agree. The sigmoid's log-scale is a ``logsigmoid`` for accuracy near 0.
    """

    net_outputs_per_channel = 2

    def __init__(self, channels: int, hidden_channels: int = 512, scale: str = "sigmoid"):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
        super().__init__(channels, hidden_channels)
        self.scale_type = scale

    def _shift_logscale(self, h: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = h.chunk(2, dim=1)
        if self.scale_type == "bounded":
            # s >= m keeps log(s) well conditioned: no log-space detour (logaddexp cost ~10% of
            # the default model's training step)
            m = math.exp(-BOUNDED_MIN_LOG_SCALE)
            return shift, torch.log(torch.sigmoid(raw + 2.0) * (1.0 - m) + m)
        return shift, F.logsigmoid(raw + 2.0)

    def _couple(self, x_b: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_s = self._shift_logscale(h)
        return (x_b + shift) * log_s.exp(), log_s.flatten(1).sum(1)

    def _uncouple(self, y_b: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_s = self._shift_logscale(h)
        return y_b * (-log_s).exp() - shift, -log_s.flatten(1).sum(1)

def checkerboard(height: int, width: int, parity: int, like: Tensor) -> Tensor:
    """``[1, 1, H, W]`` mask, 1 where ``(i + j) % 2 == parity`` (the entries kept), else 0."""
    i = torch.arange(height, device=like.device).view(-1, 1)
    j = torch.arange(width, device=like.device).view(1, -1)
    return ((i + j) % 2 == parity).to(like.dtype).view(1, 1, height, width)


def _check_parity(parity: int) -> None:
    if parity not in (0, 1):
        raise ValueError(f"mask parity must be 0 or 1, got {parity!r}")

class OldCheckerboardCoupling(Flow):
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


class OldChannelMaskedCoupling(Flow):
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

class OldAdditiveMLPCoupling(Flow):
    """NICE's additive coupling on ``D = num_features`` flattened entries: with ``parity=0`` the
    even-indexed entries ``x_a`` are kept and ``x_b`` (odd) becomes ``x_b + m(x_a)``; ``parity=1``
    swaps the roles. Volume preserving: ``logdet == 0``."""

    def __init__(self, num_features: int, parity: int = 0, hidden_features: int = 1000,
                 hidden_layers: int = 5):
        super().__init__()
        if parity not in (0, 1):
            raise ValueError(f"partition parity must be 0 or 1, got {parity!r}")
        if num_features < 2:
            raise ValueError(f"AdditiveMLPCoupling needs at least 2 features, got {num_features}")
        self.num_features = num_features
        index = torch.arange(num_features)
        self.register_buffer("kept", index[parity::2], persistent=False)
        self.register_buffer("changed", index[1 - parity::2], persistent=False)
        self.net = MLP(len(self.kept), len(self.changed), hidden_features, hidden_layers)

    def _couple(self, x: Tensor, sign: float) -> Tensor:
        flat = x.flatten(1)
        if flat.shape[1] != self.num_features:
            raise ValueError(f"AdditiveMLPCoupling was built for {self.num_features} entries per "
                             f"sample, got {tuple(x.shape)}")
        shift = self.net(flat[:, self.kept]).to(flat.dtype)  # full precision under autocast
        changed = flat[:, self.changed] + sign * shift
        return flat.index_copy(1, self.changed, changed).view_as(x)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(x, 1.0), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(y, -1.0), y.new_zeros(y.shape[0])
