"""Partitions of a coupling layer: which entries of a sample pass through unchanged (and
condition the network) and which are transformed. A partition has no parameters; it works from
the input's shape.

Every partition answers the same questions for :class:`~flowgen.flows.coupling.Coupling`:

- ``split(x) -> (x_a, x_b)``: ``x_a`` the conditioner's input, ``x_b`` the part the elementwise
  bijection transforms;
- ``merge(x_a, y_b) -> y``: the output, the kept entries taken from ``x_a`` exactly;
- ``sum_transformed(logabsdet) -> [B]``: an elementwise log-derivative of ``x_b``'s shape summed
  over the transformed entries only;
- ``sizes(features) -> (conditioner input, transformed)`` features (channels of an image,
  entries of a vector): what a network built for the partition takes and must serve;
- ``leaves(x_a, x_b)``: tensors whose concatenation along dim 1 is ``x`` (``memory=invertible``
  then needs one network evaluation per layer), or ``None``.

Slicing partitions (:class:`Halves`, :class:`Alternating`) give the network only the kept
entries; mask partitions (:class:`Checkerboard`, :class:`BinaryMask`) give it ``x * mask`` and
transform every entry, keeping the masked ones with ``torch.where`` (an overflow in a discarded
entry cannot leak a NaN into the output or the log-determinant).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _check_parity(parity: int) -> None:
    if parity not in (0, 1):
        raise ValueError(f"partition parity must be 0 or 1, got {parity!r}")


class Partition(nn.Module):
    """The interface (see the module docstring); ``event_kinds`` as on :class:`Flow`."""

    event_kinds: tuple[str, ...] = ("vector", "image")

    def sizes(self, features: int) -> tuple[int, int]:
        raise NotImplementedError

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        raise NotImplementedError

    def sum_transformed(self, logabsdet: Tensor) -> Tensor:
        return logabsdet.flatten(1).sum(1)

    def leaves(self, x_a: Tensor, x_b: Tensor) -> list[Tensor] | None:
        return None


class Halves(Partition):
    """Dim 1 cut in two: the channels of ``[B, C, H, W]`` (Glow, RealNVP after a squeeze) or the
    features of ``[B, D]``. ``parity=0`` keeps the first ``C // 2`` and transforms the last
    ``C - C // 2``; ``parity=1`` keeps the last ``C - C // 2`` and transforms the first."""

    def __init__(self, parity: int = 0):
        super().__init__()
        _check_parity(parity)
        self.parity = parity

    def sizes(self, features: int) -> tuple[int, int]:
        half = features // 2
        kept = half if self.parity == 0 else features - half
        return kept, features - kept

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] < 2:
            raise ValueError(f"Halves needs at least 2 channels (features), got {x.shape[1]}: "
                             f"squeeze the input first")
        half = x.shape[1] // 2
        lo, hi = x[:, :half], x[:, half:]
        return (lo, hi) if self.parity == 0 else (hi, lo)

    def merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        return torch.cat(self.leaves(x_a, y_b), 1)

    def leaves(self, x_a: Tensor, x_b: Tensor) -> list[Tensor]:
        return [x_a, x_b] if self.parity == 0 else [x_b, x_a]


class Alternating(Partition):
    """Even/odd entries of each sample flattened to ``D`` entries (NICE): ``parity=0`` keeps the
    even-indexed ones and transforms the odd ones, ``parity=1`` the reverse. Takes any
    ``[B, ...]``; ``merge`` returns ``[B, D]`` (the coupling restores the input's shape).
    ``features``, when given, is the ``D`` the layer was built for (checked)."""

    def __init__(self, parity: int = 0, features: int | None = None):
        super().__init__()
        _check_parity(parity)
        self.parity = parity
        self.features = features

    def sizes(self, features: int) -> tuple[int, int]:
        return len(range(self.parity, features, 2)), len(range(1 - self.parity, features, 2))

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.flatten(1)
        if self.features is not None and flat.shape[1] != self.features:
            raise ValueError(f"Alternating partition was built for {self.features} entries per "
                             f"sample, got {tuple(x.shape)}")
        if flat.shape[1] < 2:
            raise ValueError(f"Alternating needs at least 2 entries per sample, got "
                             f"{tuple(x.shape)}")
        return flat[:, self.parity::2], flat[:, 1 - self.parity::2]

    def merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        out = x_a.new_empty(x_a.shape[0], x_a.shape[1] + y_b.shape[1])
        out[:, self.parity::2] = x_a
        out[:, 1 - self.parity::2] = y_b
        return out


class _Masked(Partition):
    """A fixed binary mask, 1 on the kept entries. The network sees ``x * mask`` (see
    :meth:`net_input`); the bijection transforms every entry and ``merge`` keeps the masked
    ones from ``x`` exactly."""

    def mask(self, x: Tensor) -> Tensor:
        """The mask for a batch shaped like ``x``, broadcastable to it, in ``x``'s dtype."""
        raise NotImplementedError

    def net_input(self, masked: Tensor, mask: Tensor) -> Tensor:
        return masked

    def kept_from(self, x_a: Tensor) -> Tensor:
        """``x`` on the kept entries, from the conditioner input ``x_a``."""
        return x_a

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.mask(x)
        return self.net_input(x * mask, mask), x

    def merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        return torch.where(self.mask(y_b).bool(), self.kept_from(x_a), y_b)

    def sum_transformed(self, logabsdet: Tensor) -> Tensor:
        return logabsdet.masked_fill(self.mask(logabsdet).bool(), 0).flatten(1).sum(1)


class Checkerboard(_Masked):
    """RealNVP's spatial checkerboard on ``[B, C, H, W]``: pixels with ``(i + j) % 2 == parity``
    (all channels) are kept. The network sees the kept pixels (the others zeroed) plus the mask
    as one extra channel: ``C + 1`` input channels."""

    event_kinds = ("image",)

    def __init__(self, parity: int = 0):
        super().__init__()
        _check_parity(parity)
        self.parity = parity

    def sizes(self, features: int) -> tuple[int, int]:
        return features + 1, features

    def mask(self, x: Tensor) -> Tensor:
        return checkerboard(x.shape[-2], x.shape[-1], self.parity, x)

    def net_input(self, masked: Tensor, mask: Tensor) -> Tensor:
        b, _, h, w = masked.shape
        return torch.cat([masked, mask.expand(b, 1, h, w)], 1)

    def kept_from(self, x_a: Tensor) -> Tensor:
        return x_a[:, :-1]


class BinaryMask(_Masked):
    """Any fixed binary ``mask`` of one sample's shape (``[D]`` for vectors, ``[C, H, W]`` for
    images; 1 = kept). Not saved in the state dict: it is part of the architecture."""

    def __init__(self, mask: Tensor):
        super().__init__()
        mask = torch.as_tensor(mask)
        if mask.dim() not in (1, 3) or not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"BinaryMask needs a 0/1 mask of shape [D] or [C, H, W], got "
                             f"{tuple(mask.shape)}")
        self.event_kinds = ("vector",) if mask.dim() == 1 else ("image",)
        self.register_buffer("kept", mask.float()[None], persistent=False)

    def sizes(self, features: int) -> tuple[int, int]:
        return features, features

    def mask(self, x: Tensor) -> Tensor:
        if x.shape[1:] != self.kept.shape[1:]:
            raise ValueError(f"BinaryMask was built for samples of shape "
                             f"{tuple(self.kept.shape[1:])}, got {tuple(x.shape)}")
        return self.kept.to(x.dtype)


def checkerboard(height: int, width: int, parity: int, like: Tensor) -> Tensor:
    """``[1, 1, H, W]`` mask, 1 where ``(i + j) % 2 == parity`` (the entries kept), else 0."""
    i = torch.arange(height, device=like.device).view(-1, 1)
    j = torch.arange(width, device=like.device).view(1, -1)
    return ((i + j) % 2 == parity).to(like.dtype).view(1, 1, height, width)
