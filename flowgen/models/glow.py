"""Glow (Kingma & Dhariwal 2018), with the paper's ablations as options."""

from __future__ import annotations

import math
from collections.abc import Sequence

from flowgen.distributions import StandardNormal
from flowgen.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Coupling,
    CouplingNet,
    FlowSequence,
    Halves,
    InvertibleConv1x1,
    LearnedPrior,
    LUInvertibleConv1x1,
    RationalQuadraticSpline,
    Split,
    Squeeze,
)
from flowgen.flows.coupling import SCALES, check_channels
from flowgen.flows.multiscale import MultiScale
from flowgen.flows.permutation import Permutation
from flowgen.models.flow_model import ClassHead, FlowModel, image_shape


def spline_coupling(channels: int, hidden_channels: int = 512, bins: int = 8,
                    tail_bound: float = 3.0) -> Coupling:
    """Glow's coupling with NSF's elementwise map (Durkan et al. 2019, sec. 5.3 on images): the
    first ``C // 2`` channels of ``[B, C, H, W]`` condition, through a :class:`CouplingNet`, a
    rational-quadratic spline of ``bins`` bins on ``[-tail_bound, tail_bound]`` (the identity
    outside) of the others. Starts as the identity (the net's last layer is zero); its inverse
    maps into the same bounded interval, so sampling cannot overflow through it."""
    check_channels(channels, "the spline coupling")
    return Coupling.build(Halves(0), channels,
                          lambda n_in, n_out, k: CouplingNet(n_in, n_out, hidden_channels, k),
                          RationalQuadraticSpline(bins, tail_bound), event_kinds=("image",))


COUPLINGS = {"affine": AffineCoupling, "additive": AdditiveCoupling, "spline": spline_coupling}
PERMUTATIONS = {
    "reverse": Permutation.reverse,
    "shuffle": Permutation.shuffle,
    "conv1x1": InvertibleConv1x1,
    "conv1x1_lu": LUInvertibleConv1x1,
}
SPLIT_PRIORS = ("learned", "standard")
#: ``coupling_scale``: the affine coupling's scale (see :class:`AffineCoupling`).
COUPLING_SCALES = SCALES
#: ``split_scale``: the split priors' log-scale, ``exp`` (unbounded) or ``bounded`` above by
#: ``softplus(SPLIT_MAX_LOG_SCALE)`` (see :class:`Split`). Measured on the default Glow after
#: 300 MNIST steps: one split's log-scale reached 30 on a T=1 latent (e^30), which the bounded
#: couplings after it could not contain (1 of 256 samples non-finite).
SPLIT_SCALES = ("exp", "bounded")
SPLIT_MAX_LOG_SCALE = 2.0


class Glow(FlowModel):
    """Glow on images of ``event_shape`` ``(C, H, W)`` (square).

    Each of ``levels`` levels: :class:`Squeeze`, then ``steps`` steps of (:class:`ActNorm`,
    a channel permutation, a coupling), then :class:`Split` (every level but
    the last); the top latent has a :class:`LearnedPrior` (``learn_top``) or ``N(0, I)``.

    ``permutation``: ``conv1x1_lu`` (default), ``conv1x1``, ``reverse`` or ``shuffle`` (the
    paper's ablation). ``lu`` is a shorthand: ``True`` -> ``conv1x1_lu``, ``False`` -> ``conv1x1``.
    ``coupling_scale`` (affine couplings): ``sigmoid`` (the paper's ``sigmoid(h + 2)``, the
    default here so that a checkpoint whose config predates the option rebuilds as it was
    trained) or ``bounded`` (the sigmoid kept above ``exp(-2)``: sampling cannot overflow
    through a coupling's inverse; configs/model/glow.yaml's default).
    ``coupling``: ``affine`` (the paper's), ``additive`` or ``spline`` (:func:`spline_coupling`:
    ``spline_bins`` bins on ``[-tail_bound, tail_bound]``; the two options are used by it only).
    ``split_prior``: ``learned`` (conditioned on the kept half) or ``standard`` (``N(0, I)``).
    ``split_scale``: ``exp`` (the paper's, the default for the same reason) or ``bounded`` (each
    learned split prior's scale at most ``e^softplus(2)``; configs/model/glow.yaml's default).
    ``num_classes > 0`` makes the top prior (and, with ``condition_splits``, every split prior)
    class-conditional on ``cond`` (labels ``[B]``), and adds a linear class head on the mean
    top activation (:meth:`class_logits`); ``cond=None`` gives the unconditional model.
    The transform is a :class:`MultiScale` flow with every prior folded in, the base ``N(0, I)``.
    """

    arch = "glow"

    def __init__(self, event_shape: Sequence[int] = (3, 32, 32), levels: int = 3,
                 steps: int = 32, hidden_channels: int = 512, coupling: str = "affine",
                 permutation: str = "conv1x1_lu", lu: bool | None = None,
                 learn_top: bool = True, split_prior: str = "learned", num_classes: int = 0,
                 condition_splits: bool = False, coupling_scale: str = "sigmoid",
                 split_scale: str = "exp", spline_bins: int = 8, tail_bound: float = 3.0):
        in_channels, image_size = image_shape(event_shape, "Glow")
        if lu is not None:
            permutation = "conv1x1_lu" if lu else "conv1x1"
        for name, value, allowed in (("coupling", coupling, COUPLINGS),
                                     ("permutation", permutation, PERMUTATIONS),
                                     ("split_prior", split_prior, SPLIT_PRIORS),
                                     ("coupling_scale", coupling_scale, COUPLING_SCALES),
                                     ("split_scale", split_scale, SPLIT_SCALES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
        if levels < 1 or steps < 1:
            raise ValueError(f"levels and steps must be >= 1, got levels={levels}, steps={steps}")
        if image_size % 2 ** levels:
            fit = max(k for k in range(levels + 1) if image_size % 2 ** k == 0)
            raise ValueError(f"image size {image_size} is not divisible by 2**levels = "
                             f"{2 ** levels}: use levels<={fit} or pad/resize the images to a "
                             f"multiple of {2 ** levels} (data.image_size=...)")
        split_classes = num_classes if condition_splits else 0
        scale = {"affine": {"scale": coupling_scale}, "additive": {},
                 "spline": {"bins": spline_bins, "tail_bound": tail_bound}}[coupling]
        blocks, c = [], in_channels
        for i in range(levels):
            c *= 4
            flows = [Squeeze()]
            for _ in range(steps):
                flows += [ActNorm(c), PERMUTATIONS[permutation](c),
                          COUPLINGS[coupling](c, hidden_channels, **scale)]
            if i < levels - 1:
                split = Split(c, learned=split_prior == "learned", num_classes=split_classes,
                              max_log_scale=SPLIT_MAX_LOG_SCALE if split_scale == "bounded"
                              else None)
                flows.append(split)
                c = split.kept
            blocks.append(FlowSequence(flows))
        top = LearnedPrior(c, learned=learn_top, num_classes=num_classes)
        shape = (in_channels, image_size, image_size)
        transform = MultiScale(blocks, shape, top=top)
        super().__init__(transform, StandardNormal((math.prod(shape),)), shape,
                         head=ClassHead(c, num_classes) if num_classes else None,
                         num_classes=num_classes)
