"""Glow (Kingma & Dhariwal 2018), with the paper's ablations as options."""

from __future__ import annotations

from torch import Tensor, nn

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
from flowgen.flows.coupling import SCALES
from flowgen.flows.permutation import Permutation
from flowgen.models.multiscale import MultiScaleFlow, image_shape

COUPLINGS = {"affine": AffineCoupling, "additive": AdditiveCoupling}
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


class Glow(MultiScaleFlow):
    """Glow on ``[B, in_channels, image_size, image_size]`` images.

    Each of ``levels`` levels: :class:`Squeeze`, then ``steps`` steps of (:class:`ActNorm`,
    a channel permutation, an affine or additive coupling), then :class:`Split` (every level but
    the last); the top latent has a :class:`LearnedPrior` (``learn_top``) or ``N(0, I)``.

    ``permutation``: ``conv1x1_lu`` (default), ``conv1x1``, ``reverse`` or ``shuffle`` (the
    paper's ablation). ``lu`` is a shorthand: ``True`` -> ``conv1x1_lu``, ``False`` -> ``conv1x1``.
    ``coupling_scale`` (affine couplings): ``sigmoid`` (the paper's ``sigmoid(h + 2)``, the
    default here so that a checkpoint whose config predates the option rebuilds as it was
    trained) or ``bounded`` (the sigmoid kept above ``exp(-2)``: sampling cannot overflow
    through a coupling's inverse; configs/model/glow.yaml's default).
    ``split_prior``: ``learned`` (conditioned on the kept half) or ``standard`` (``N(0, I)``).
    ``split_scale``: ``exp`` (the paper's, the default for the same reason) or ``bounded`` (each
    learned split prior's scale at most ``e^softplus(2)``; configs/model/glow.yaml's default).
    ``num_classes > 0`` makes the top prior (and, with ``condition_splits``, every split prior)
    class-conditional on ``cond`` (labels ``[B]``), and adds a linear class head on the mean
    top activation (:meth:`class_logits`); ``cond=None`` gives the unconditional model.
    ``memory``: what training keeps for backward, per level: ``store`` (everything, fastest),
    ``checkpoint`` (gradient checkpointing per layer) or ``invertible`` (only each level's output;
    activations are recomputed by inverting the flow, so memory stays flat as ``steps`` grows).
    Same results and gradients in every mode; see :mod:`flowgen.flows.memory`.
    """

    arch = "glow"

    def __init__(self, in_channels: int = 3, image_size: int = 32, levels: int = 3,
                 steps: int = 32, hidden_channels: int = 512, coupling: str = "affine",
                 permutation: str = "conv1x1_lu", lu: bool | None = None,
                 learn_top: bool = True, split_prior: str = "learned", num_classes: int = 0,
                 condition_splits: bool = False, memory: str = "store",
                 coupling_scale: str = "sigmoid", split_scale: str = "exp",
                 event_shape=None):
        if event_shape is not None:
            in_channels, image_size = image_shape(event_shape, type(self).__name__)
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
        scale = {"scale": coupling_scale} if coupling == "affine" else {}
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
            blocks.append(FlowSequence(flows, memory=memory))
        top = LearnedPrior(c, learned=learn_top, num_classes=num_classes)
        super().__init__(blocks, (in_channels, image_size, image_size), top_prior=top)
        self.num_classes = num_classes
        self.classifier = nn.Linear(c, num_classes) if num_classes else None
        self.config = dict(in_channels=in_channels, image_size=image_size, levels=levels,
                           steps=steps, hidden_channels=hidden_channels, coupling=coupling,
                           permutation=permutation, learn_top=learn_top,
                           split_prior=split_prior, num_classes=num_classes,
                           condition_splits=condition_splits, memory=memory,
                           coupling_scale=coupling_scale, split_scale=split_scale)

    def class_logits(self, top: Tensor) -> Tensor:
        """Class scores ``[B, num_classes]`` from the top activation (Glow's ``y`` head)."""
        if self.classifier is None:
            raise ValueError("this Glow has no class head: build it with num_classes > 0")
        return self.classifier(top.mean((2, 3)))
