"""Small instances of every concrete :class:`Flow` for the contract test
(tests/flows/test_contract.py), which fails naming any class of ``flowgen.flows`` with no case
here. A new layer joins ``CASES`` and is tested for free: give it the sample shape for each of
its ``event_kinds`` and, if it takes ``cond``, a function ``batch -> cond``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from flowgen.flows import (
    MLP,
    ActNorm,
    AdditiveBijection,
    AdditiveCoupling,
    AdditiveMLPCoupling,
    AffineBijection,
    AffineCoupling,
    Alternating,
    BatchNormFlow,
    BinaryMask,
    ChannelMaskedCoupling,
    Checkerboard,
    CheckerboardCoupling,
    Coupling,
    CouplingNet,
    DiagonalScaling,
    Flatten,
    Flow,
    FlowSequence,
    InvertibleConv1x1,
    LearnedPrior,
    LogitTransform,
    LUInvertibleConv1x1,
    Permutation,
    ResNet,
    Split,
    Squeeze,
    TanhAffineBijection,
    mlp_coupling,
)
from flowgen.flows.multiscale import MultiScale


def multiscale(num_classes: int = 0) -> MultiScale:
    """Two levels on ``(2, 4, 4)``: squeeze, a step, split; squeeze, a step; a top prior."""
    first = FlowSequence([Squeeze(), ActNorm(8), AffineCoupling(8, hidden_channels=8),
                          Split(8, num_classes=num_classes)])
    second = FlowSequence([Squeeze(), ActNorm(16), AffineCoupling(16, hidden_channels=8)])
    return MultiScale([first, second], (2, 4, 4),
                      top=LearnedPrior(16, num_classes=num_classes))


@dataclass(frozen=True)
class Case:
    """``build()`` a small instance; ``image``/``vector``: one sample's shape for each event
    kind the instance declares; ``cond(batch)``: the conditioning it takes, if any."""

    build: Callable[[], Flow]
    image: tuple[int, ...] | None = None
    vector: tuple[int, ...] | None = None
    cond: Callable[[int], torch.Tensor] | None = None
    #: standard normal draws -> the layer's domain (e.g. pixels in [-0.5, 0.5)), if it has one
    domain: Callable[[torch.Tensor], torch.Tensor] | None = None

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {kind: shape for kind, shape in (("image", self.image), ("vector", self.vector))
                if shape is not None}


def labels(num_classes: int) -> Callable[[int], torch.Tensor]:
    return lambda batch: torch.arange(batch) % num_classes


def context(features: int) -> Callable[[int], torch.Tensor]:
    return lambda batch: torch.randn(batch, features, dtype=torch.float64)


class EvalBatchNorm(BatchNormFlow):
    """BatchNormFlow held in eval mode (running statistics), with non-trivial statistics: the
    map the contract is about. Batch statistics are checked in tests/models/test_realnvp.py."""

    def __init__(self, channels: int):
        super().__init__(channels)
        with torch.no_grad():
            self.running_mean.normal_(0, 0.5)
            self.running_var.uniform_(0.3, 2.0)

    def train(self, mode: bool = True):
        return super().train(False)


def bounded_coupling_near_its_floor(channels: int = 4) -> AffineCoupling:
    """A bounded affine coupling whose sigmoid is ~e^-6, below its floor e^-2: the checks then
    run where the floor and the sigmoid mix, not only where the floor is negligible."""
    layer = AffineCoupling(channels, hidden_channels=8, scale="bounded")
    with torch.no_grad():
        layer.net[-1].conv.bias[channels - channels // 2:] = -8.0  # the raw log-scale half
    return layer


def masked_image_coupling() -> Coupling:
    mask = (torch.arange(2 * 3 * 3) % 3 == 0).view(2, 3, 3)
    return Coupling(BinaryMask(mask), ResNet(2, 4, 8, 1), TanhAffineBijection(2))


CASES: dict[str, Case] = {
    "squeeze": Case(lambda: Squeeze(), image=(2, 4, 4)),
    "actnorm": Case(lambda: ActNorm(3), image=(3, 4, 4), vector=(3,)),
    "conv1x1": Case(lambda: InvertibleConv1x1(4), image=(4, 3, 3), vector=(4,)),
    "conv1x1_lu": Case(lambda: LUInvertibleConv1x1(4), image=(4, 3, 3), vector=(4,)),
    "permutation_shuffle": Case(lambda: Permutation.shuffle(5), image=(5, 2, 2), vector=(5,)),
    "affine_coupling": Case(lambda: AffineCoupling(4, hidden_channels=8), image=(4, 4, 4)),
    "affine_coupling_odd": Case(lambda: AffineCoupling(5, hidden_channels=8), image=(5, 3, 3)),
    "affine_coupling_bounded": Case(lambda: AffineCoupling(4, hidden_channels=8,
                                                           scale="bounded"), image=(4, 4, 4)),
    "affine_coupling_bounded_at_floor": Case(bounded_coupling_near_its_floor, image=(4, 3, 3)),
    "affine_coupling_context": Case(lambda: AffineCoupling(4, 8, context_features=2),
                                    image=(4, 3, 3), cond=context(2)),
    "additive_coupling": Case(lambda: AdditiveCoupling(4, hidden_channels=8), image=(4, 4, 4)),
    "additive_coupling_labels": Case(lambda: AdditiveCoupling(3, 8, context_features=2,
                                                              num_classes=3),
                                     image=(3, 2, 2), cond=labels(3)),
    "split": Case(lambda: Split(4), image=(4, 3, 3)),
    "split_odd": Case(lambda: Split(3), image=(3, 3, 3)),
    "split_bounded": Case(lambda: Split(4, max_log_scale=0.1), image=(4, 3, 3)),  # bound bites
    "split_labels": Case(lambda: Split(4, num_classes=3), image=(4, 2, 2), cond=labels(3)),
    "learned_prior": Case(lambda: LearnedPrior(3), image=(3, 2, 2)),
    "learned_prior_labels": Case(lambda: LearnedPrior(3, num_classes=3), image=(3, 2, 2),
                                 cond=labels(3)),
    "checkerboard_coupling_even": Case(lambda: CheckerboardCoupling(3, 0, hidden_channels=8,
                                                                    res_blocks=1),
                                       image=(3, 4, 4)),
    "checkerboard_coupling_odd": Case(lambda: CheckerboardCoupling(2, 1, hidden_channels=8,
                                                                   res_blocks=2),
                                      image=(2, 3, 3)),
    "checkerboard_coupling_context": Case(lambda: CheckerboardCoupling(2, 1, 8, 1,
                                                                       context_features=3),
                                          image=(2, 2, 3), cond=context(3)),
    "channel_coupling_even": Case(lambda: ChannelMaskedCoupling(4, 0, hidden_channels=8,
                                                                res_blocks=1), image=(4, 3, 3)),
    "channel_coupling_odd": Case(lambda: ChannelMaskedCoupling(5, 1, hidden_channels=8,
                                                               res_blocks=1), image=(5, 2, 2)),
    "batchnorm_eval": Case(lambda: EvalBatchNorm(3), image=(3, 3, 3), vector=(3,)),
    "additive_mlp_coupling_even": Case(lambda: AdditiveMLPCoupling(12, 0, hidden_features=16,
                                                                   hidden_layers=2),
                                       image=(3, 2, 2), vector=(12,)),
    "additive_mlp_coupling_odd": Case(lambda: AdditiveMLPCoupling(9, 1, hidden_features=16,
                                                                  hidden_layers=1),
                                      image=(1, 3, 3), vector=(9,)),
    "additive_mlp_coupling_context": Case(lambda: AdditiveMLPCoupling(5, 0, 16, 1,
                                                                      context_features=2),
                                          vector=(5,), image=(5, 1, 1), cond=context(2)),
    "diagonal_scaling": Case(lambda: DiagonalScaling((2, 3, 3)), image=(2, 3, 3)),
    "diagonal_scaling_vector": Case(lambda: DiagonalScaling((6,)), vector=(6,)),
    "coupling_vector_affine": Case(lambda: mlp_coupling(5, 1, hidden_features=8), vector=(5,)),
    "coupling_vector_context": Case(lambda: mlp_coupling(4, 0, 8, context_features=2),
                                    vector=(4,), cond=context(2)),
    "coupling_vector_labels": Case(lambda: mlp_coupling(3, 1, 8, transform="additive",
                                                        context_features=2, num_classes=4),
                                   vector=(3,), cond=labels(4)),
    "coupling_alternating_glow_affine": Case(
        lambda: Coupling(Alternating(1), MLP(3, 2 * 4, 8, 1), AffineBijection("bounded")),
        vector=(7,), image=(7, 1, 1)),
    "coupling_mask_vector": Case(lambda: Coupling(BinaryMask(torch.tensor([0, 1, 1, 0, 1])),
                                                  MLP(5, 10, 8, 1), TanhAffineBijection(5)),
                                 vector=(5,)),
    "coupling_mask_image": Case(masked_image_coupling, image=(2, 3, 3)),
    "coupling_checkerboard_additive": Case(
        lambda: Coupling(Checkerboard(0), CouplingNet(3, 2, 8), AdditiveBijection()),
        image=(2, 3, 4)),
    "sequence": Case(lambda: FlowSequence([ActNorm(2), Squeeze(), LUInvertibleConv1x1(8),
                                           AffineCoupling(8, hidden_channels=8), Split(8)]),
                     image=(2, 4, 4)),
    "multiscale": Case(multiscale, image=(2, 4, 4)),
    "multiscale_labels": Case(lambda: multiscale(3), image=(2, 4, 4), cond=labels(3)),
    "flatten": Case(lambda: Flatten((2, 3, 3)), image=(2, 3, 3)),
    "logit": Case(lambda: LogitTransform(0.05), image=(2, 3, 3), vector=(5,),
                  domain=lambda x: torch.sigmoid(x) * 0.98 - 0.49),
    "sequence_vector": Case(lambda: FlowSequence([ActNorm(4), InvertibleConv1x1(4),
                                                  mlp_coupling(4, 0, 8), Permutation.reverse(4),
                                                  DiagonalScaling((4,))]), vector=(4,)),
}

# Each flow family keeps its cases in its own file (one owner per file); all meet here.
from tests.flows import cases_autoregressive, cases_spline  # noqa: E402

for _family in (cases_spline, cases_autoregressive):
    CASES.update(_family.CASES)
