"""RealNVP (Dinh et al. 2017)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from flowgen.distributions import StandardNormal
from flowgen.flows import (
    ActNorm,
    BatchNormFlow,
    ChannelMaskedCoupling,
    Checkerboard,
    CheckerboardCoupling,
    Coupling,
    Flow,
    FlowSequence,
    Halves,
    LearnedPrior,
    RationalQuadraticSpline,
    ResNet,
    Split,
    Squeeze,
)
from flowgen.flows.multiscale import MultiScale
from flowgen.models.flow_model import FlowModel, image_shape

NORMS = {"batchnorm": BatchNormFlow, "actnorm": ActNorm}
PRIORS = ("standard", "learned")
#: ``coupling``: the paper's bounded affine map, or NSF's rational-quadratic spline.
COUPLINGS = ("affine", "spline")


def spline_coupling(partition: str, channels: int, parity: int, hidden_channels: int,
                    res_blocks: int, bins: int, tail_bound: float) -> Coupling:
    """RealNVP's ``checkerboard`` or ``channel`` coupling with a rational-quadratic spline of
    ``bins`` bins on ``[-tail_bound, tail_bound]`` in place of the affine map (NSF, Durkan et
    al. 2019): the same partition and :class:`ResNet`, which starts at zero (the identity)."""
    split = Checkerboard(parity) if partition == "checkerboard" else Halves(parity)

    def conditioner(n_in: int, n_out: int, k: int) -> ResNet:
        return ResNet(n_in, n_out, hidden_channels, res_blocks, k)

    return Coupling.build(split, channels, conditioner, RationalQuadraticSpline(bins, tail_bound),
                          event_kinds=("image",))


class RealNVP(FlowModel):
    """RealNVP on images of ``event_shape`` ``(C, H, W)`` (square).

    Each of the first ``levels - 1`` scales: three checkerboard-masked affine couplings
    (alternating mask parity), :class:`Squeeze`, three channel-wise masked affine couplings
    (alternating halves), then half the channels are factored out. The last scale: four
    checkerboard couplings. Every coupling is followed by a normalisation layer: the paper's
    in-flow batch normalisation (``norm="batchnorm"``, :class:`BatchNormFlow`) or ``"actnorm"``.
    Coupling networks are weight-normalised ResNets (``res_blocks`` blocks of width
    ``hidden_channels``).

    ``coupling="spline"``: every coupling transforms with NSF's rational-quadratic spline
    (``spline_bins`` bins on ``[-tail_bound, tail_bound]``, :func:`spline_coupling`) instead of
    the affine map (``"affine"``, the paper's); the two options are used by the spline only.

    ``prior="standard"`` (the paper): every latent is ``N(0, I)`` with no learned prior;
    ``"learned"``: Glow-style learned conditional priors at the factor-outs (:class:`Split`) and
    a learned top prior (:class:`LearnedPrior`).

    Only the first ``levels - 1`` scales halve the resolution, so ``image_size`` must be
    divisible by ``2**(levels - 1)`` and the last scale at least 2x2 (28x28 MNIST takes
    ``levels=3``). With batch normalisation, evaluate and sample in eval mode (see
    :class:`BatchNormFlow`).
    """

    arch = "realnvp"

    def __init__(self, event_shape: Sequence[int] = (3, 32, 32), levels: int = 3,
                 hidden_channels: int = 64, res_blocks: int = 8, norm: str = "batchnorm",
                 prior: str = "standard", coupling: str = "affine", spline_bins: int = 8,
                 tail_bound: float = 3.0):
        in_channels, image_size = image_shape(event_shape, "RealNVP")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {list(PRIORS)}, got {prior!r}")
        if coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {list(COUPLINGS)}, got {coupling!r}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        factor = 2 ** (levels - 1)
        if image_size % factor or image_size // factor < 2:
            fit = max((k for k in range(1, levels + 1)
                       if image_size % 2 ** (k - 1) == 0 and image_size // 2 ** (k - 1) >= 2),
                      default=None)
            hint = f"use levels<={fit}" if fit else "use a larger image"
            raise ValueError(f"image size {image_size} does not fit {levels} RealNVP levels "
                             f"(needs divisibility by 2**(levels-1) = {factor} and a last scale "
                             f"of at least 2x2): {hint} or resize the images (data.image_size=...)")
        net = dict(hidden_channels=hidden_channels, res_blocks=res_blocks)

        def make(partition: str, channels: int, parity: int) -> Flow:
            if coupling == "spline":
                return spline_coupling(partition, channels, parity, bins=spline_bins,
                                       tail_bound=tail_bound, **net)
            affine = CheckerboardCoupling if partition == "checkerboard" else ChannelMaskedCoupling
            return affine(channels, parity, **net)

        def coupled(couplings: list[Flow], channels: int) -> list[Flow]:
            return [f for c in couplings for f in (c, NORMS[norm](channels))]

        blocks, c = [], in_channels
        for i in range(levels):
            last = i == levels - 1
            flows = coupled([make("checkerboard", c, k % 2)
                             for k in range(4 if last else 3)], c)
            if not last:
                c *= 4
                flows.append(Squeeze())
                flows += coupled([make("channel", c, k % 2) for k in range(3)], c)
                split = Split(c, learned=prior == "learned")
                flows.append(split)
                c = split.kept
            elif prior == "learned":
                flows.append(LearnedPrior(c))
            blocks.append(FlowSequence(flows))
        shape = (in_channels, image_size, image_size)
        super().__init__(MultiScale(blocks, shape), StandardNormal((math.prod(shape),)), shape)
