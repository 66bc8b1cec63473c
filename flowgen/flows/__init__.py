"""Invertible layers: the math. Each maps data -> latent in ``forward`` (see :class:`Flow`)."""

from flowgen.flows.actnorm import ActNorm
from flowgen.flows.autoregressive import MaskedAutoregressive
from flowgen.flows.base import Flow
from flowgen.flows.batchnorm import BatchNormFlow
from flowgen.flows.bijections import (
    AdditiveBijection,
    AffineBijection,
    Bijection,
    TanhAffineBijection,
)
from flowgen.flows.coupling import AdditiveCoupling, AffineCoupling, Coupling
from flowgen.flows.dense import MLP, AdditiveMLPCoupling, DiagonalScaling, mlp_coupling
from flowgen.flows.invconv import InvertibleConv1x1, LUInvertibleConv1x1
from flowgen.flows.inverse import InverseFlow
from flowgen.flows.made import MADE, MaskedLinear
from flowgen.flows.masks import ChannelMaskedCoupling, CheckerboardCoupling
from flowgen.flows.nets import CouplingNet, ZeroConv2d
from flowgen.flows.partitions import Alternating, BinaryMask, Checkerboard, Halves, Partition
from flowgen.flows.permutation import Permutation
from flowgen.flows.prior import LearnedPrior
from flowgen.flows.reshape import Flatten, LogitTransform
from flowgen.flows.resnet import ResNet
from flowgen.flows.sequence import FlowSequence, set_memory
from flowgen.flows.spline import RationalQuadraticSpline
from flowgen.flows.split import Split
from flowgen.flows.squeeze import Squeeze

__all__ = ["MLP", "ActNorm", "AdditiveCoupling", "AdditiveMLPCoupling", "AffineCoupling",
           "BatchNormFlow", "ChannelMaskedCoupling", "CheckerboardCoupling", "CouplingNet",
           "DiagonalScaling", "Flow", "FlowSequence", "InvertibleConv1x1",
           "LUInvertibleConv1x1", "LearnedPrior", "ResNet", "Split", "Squeeze", "ZeroConv2d",
           "set_memory"]
__all__ += ["AdditiveBijection", "AffineBijection", "Alternating", "Bijection", "BinaryMask",
            "Checkerboard", "Coupling", "Halves", "Partition", "Permutation",
            "TanhAffineBijection", "mlp_coupling"]
__all__ += ["RationalQuadraticSpline"]
__all__ += ["MADE", "InverseFlow", "MaskedAutoregressive", "MaskedLinear"]
__all__ += ["Flatten", "LogitTransform"]
