"""RealNVP's masked affine couplings (Dinh et al. 2017, sec. 3.3-3.4): a binary mask ``b`` picks
the entries that pass through unchanged and condition the others,
``y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))``, ``logdet = sum (1 - b) * s``.

The log-scale is bounded, ``s = scale * tanh(raw)`` with a learned per-channel ``scale``
(:class:`~flowgen.flows.bijections.TanhAffineBijection`); the coupling network
(:class:`ResNet`) starts at zero output, so every coupling starts as the identity."""

from __future__ import annotations

from flowgen.flows.bijections import TanhAffineBijection
from flowgen.flows.coupling import Coupling, check_channels
from flowgen.flows.partitions import Checkerboard, Halves, Partition
from flowgen.flows.resnet import ResNet


class _RealNVPCoupling(Coupling):
    """A :class:`ResNet`-conditioned :class:`TanhAffineBijection` coupling on ``[B, C, H, W]``.
    Checkpoints of the classes before the one :class:`Coupling` saved the log-scale's ``scale``
    as ``scale`` ``[1, C, 1, 1]``: loading renames it to ``bijection.scale`` ``[C]``."""

    event_kinds = ("image",)

    def __init__(self, partition: Partition, channels: int, hidden_channels: int,
                 res_blocks: int, context_features: int, num_classes: int):
        kept, changed = partition.sizes(channels)
        net = ResNet(kept, 2 * changed, hidden_channels, res_blocks, context_features)
        super().__init__(partition, net, TanhAffineBijection(changed), context_features,
                         num_classes, self.event_kinds)

    @property
    def parity(self) -> int:
        return self.partition.parity

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        legacy, key = prefix + "scale", prefix + "bijection.scale"
        if legacy in state_dict and key not in state_dict:
            state_dict[key] = state_dict.pop(legacy).reshape(-1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CheckerboardCoupling(_RealNVPCoupling):
    """Spatial checkerboard-masked affine coupling on ``[B, C, H, W]``.

    The pixels with ``(i + j) % 2 == parity`` (all channels) are kept; the network sees the kept
    pixels (the others zeroed) plus the mask as an extra channel, and outputs a shift and a raw
    log-scale for every entry, of which only the masked-out ones are used. The mask is built
    from the input's size, so the layer has no shape-dependent state.
    """

    def __init__(self, channels: int, parity: int = 0, hidden_channels: int = 64,
                 res_blocks: int = 8, context_features: int = 0, num_classes: int = 0):
        _check_mask_parity(parity)
        super().__init__(Checkerboard(parity), channels, hidden_channels, res_blocks,
                         context_features, num_classes)


class ChannelMaskedCoupling(_RealNVPCoupling):
    """Channel-wise masked affine coupling on ``[B, C, H, W]``: with ``parity=0`` the first
    ``C // 2`` channels are kept and condition the last ``C - C // 2``; ``parity=1`` swaps the
    roles. (Masking whole channels equals slicing them, so the network only sees the kept ones.)
    """

    def __init__(self, channels: int, parity: int = 0, hidden_channels: int = 64,
                 res_blocks: int = 8, context_features: int = 0, num_classes: int = 0):
        _check_mask_parity(parity)
        check_channels(channels, type(self).__name__)
        super().__init__(Halves(parity), channels, hidden_channels, res_blocks,
                         context_features, num_classes)


def _check_mask_parity(parity: int) -> None:
    if parity not in (0, 1):
        raise ValueError(f"mask parity must be 0 or 1, got {parity!r}")

