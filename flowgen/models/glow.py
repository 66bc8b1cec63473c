"""Glow (Kingma & Dhariwal 2018)."""

from __future__ import annotations

from flowgen.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    FlowSequence,
    InvertibleConv1x1,
    LearnedPrior,
    LUInvertibleConv1x1,
    Split,
    Squeeze,
)
from flowgen.models.multiscale import MultiScaleFlow

COUPLINGS = {"affine": AffineCoupling, "additive": AdditiveCoupling}


class Glow(MultiScaleFlow):
    """Glow on ``[B, in_channels, image_size, image_size]`` images.

    Each of ``levels`` levels: :class:`Squeeze`, then ``steps`` steps of (:class:`ActNorm`,
    invertible 1x1 convolution — LU-parametrised if ``lu`` —, affine or additive coupling), then
    :class:`Split` (every level but the last) or the learned top prior (the last).
    """

    arch = "glow"

    def __init__(self, in_channels: int = 3, image_size: int = 32, levels: int = 3,
                 steps: int = 32, hidden_channels: int = 512, coupling: str = "affine",
                 lu: bool = True):
        if coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {sorted(COUPLINGS)}, got {coupling!r}")
        if levels < 1 or steps < 1:
            raise ValueError(f"levels and steps must be >= 1, got levels={levels}, steps={steps}")
        if image_size % 2 ** levels:
            fit = max(k for k in range(levels + 1) if image_size % 2 ** k == 0)
            raise ValueError(f"image size {image_size} is not divisible by 2**levels = "
                             f"{2 ** levels}: use levels<={fit} or pad/resize the images to a "
                             f"multiple of {2 ** levels} (data.image_size=...)")
        conv = LUInvertibleConv1x1 if lu else InvertibleConv1x1
        blocks, c = [], in_channels
        for i in range(levels):
            c *= 4
            flows = [Squeeze()]
            for _ in range(steps):
                flows += [ActNorm(c), conv(c), COUPLINGS[coupling](c, hidden_channels)]
            if i < levels - 1:
                split = Split(c)
                flows.append(split)
                c = split.kept
            else:
                flows.append(LearnedPrior(c))
            blocks.append(FlowSequence(flows))
        super().__init__(blocks, (in_channels, image_size, image_size))
        self.config = dict(in_channels=in_channels, image_size=image_size, levels=levels,
                           steps=steps, hidden_channels=hidden_channels, coupling=coupling, lu=lu)
