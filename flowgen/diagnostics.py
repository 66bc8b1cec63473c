"""Why samples break: counts of non-finite and out-of-range images, and a per-layer trace of
the inverse pass that shows which layer amplifies its input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from flowgen.data import postprocess
from flowgen.models import FlowModel

#: Model space is ``[-0.5, 0.5]``; a sample further out than this is not an image the model
#: was trained on (one 8-bit level is 1/256 ~ 0.004, so this allows ~25 levels of overshoot).
RANGE_TOLERANCE = 0.1


@dataclass(frozen=True)
class SampleHealth:
    """How many of ``n_samples`` model-space images had a non-finite value, and how many of the
    finite ones went outside ``[-0.5 - tol, 0.5 + tol]`` (before clamping to pixels)."""

    n_samples: int
    nonfinite: int
    out_of_range: int

    def __add__(self, other: SampleHealth) -> SampleHealth:
        return SampleHealth(self.n_samples + other.n_samples, self.nonfinite + other.nonfinite,
                            self.out_of_range + other.out_of_range)

    @property
    def nonfinite_fraction(self) -> float:
        return self.nonfinite / self.n_samples if self.n_samples else 0.0

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self, what: str = "samples") -> str:
        return (f"{self.nonfinite} of {self.n_samples} {what} non-finite, {self.out_of_range} "
                f"out of range")


def nonfinite_mask(images: Tensor) -> Tensor:
    """``[N]`` bool: which of ``images`` ``[N, ...]`` hold a NaN or an infinity."""
    return ~torch.isfinite(images).flatten(1).all(1)


def sample_health(images: Tensor, tolerance: float = RANGE_TOLERANCE) -> SampleHealth:
    """Count the broken images of a batch ``[N, C, H, W]`` in model space."""
    bad = nonfinite_mask(images)
    peak = images.flatten(1).abs().amax(1)
    outside = ~bad & (peak > 0.5 + tolerance)
    return SampleHealth(images.shape[0], int(bad.sum()), int(outside.sum()))


def display_pixels(images: Tensor, n_bits: int) -> tuple[Tensor, SampleHealth]:
    """Model-space images ``[N, C, H, W]`` -> (pixels in ``[0, 1]``, their health). An image
    with a non-finite value becomes a solid red tile, never a plausible dark or grey image; the
    batch is then made RGB if it was greyscale (``[N, 3, H, W]``), so that red can show."""
    health = sample_health(images)
    pixels = postprocess(torch.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0), n_bits)
    if health.nonfinite:
        if pixels.shape[1] == 1:
            pixels = pixels.repeat(1, 3, 1, 1)
        red = torch.zeros(pixels.shape[1], 1, 1, dtype=pixels.dtype)
        red[0] = 1.0
        pixels[nonfinite_mask(images)] = red
    return pixels, health


@dataclass(frozen=True)
class LayerStat:
    """One layer's output in the inverse pass (latent -> data): its position ``level``/``index``
    (index in the level's flows, -1 for the top prior), type, largest absolute finite value,
    root mean square of the finite values and the fraction of non-finite entries."""

    level: int
    index: int
    layer: str
    max_abs: float
    rms: float
    nonfinite: float


def _stat(level: int, index: int, layer: str, x: Tensor) -> LayerStat:
    ok = torch.isfinite(x)
    finite = x[ok].double()
    return LayerStat(level, index, layer,
                     finite.abs().max().item() if finite.numel() else float("nan"),
                     finite.pow(2).mean().sqrt().item() if finite.numel() else float("nan"),
                     1.0 - ok.double().mean().item())


@torch.no_grad()
def inverse_trace(model: FlowModel, zs: Sequence[Tensor],
                  cond: Tensor | None = None) -> list[LayerStat]:
    """Decode ``zs`` (one latent ``[B, *shape]`` per level) as :meth:`FlowModel.inverse`
    does, recording every layer's output: the first layer whose ``max_abs`` jumps is the one
    that amplifies. Layers in the order they run (top prior, then the last level backwards)."""
    stats = []
    x = zs[-1]
    last = len(model.transform.levels) - 1
    if model.transform.top is not None:
        x = model.transform.top.inverse(x, cond)[0]
        stats.append(_stat(last, -1, type(model.transform.top).__name__, x))
    for i in reversed(range(len(model.transform.levels))):
        if i < last:
            x = torch.cat([x, zs[i]], 1)
        flows = model.transform.levels[i].flows
        for j in reversed(range(len(flows))):
            x = flows[j].inverse(x, cond)[0]
            stats.append(_stat(i, j, type(flows[j]).__name__, x))
    return stats


def first_amplifier(stats: Sequence[LayerStat], factor: float = 10.0) -> LayerStat | None:
    """The first layer that blows up: non-finite output, or ``max_abs`` above ``factor`` times
    the largest value before it; ``None`` if none does."""
    peak = 0.0
    for s in stats:
        if s.nonfinite > 0 or (peak > 0 and s.max_abs > factor * peak):
            return s
        peak = max(peak, s.max_abs)
    return None
