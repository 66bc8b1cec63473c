"""Invertible layers: the math. Each maps data -> latent in ``forward`` (see :class:`Flow`)."""

from flowgen.flows.actnorm import ActNorm
from flowgen.flows.base import Flow
from flowgen.flows.batchnorm import BatchNormFlow
from flowgen.flows.coupling import AdditiveCoupling, AffineCoupling
from flowgen.flows.dense import MLP, AdditiveMLPCoupling, DiagonalScaling
from flowgen.flows.invconv import InvertibleConv1x1, LUInvertibleConv1x1
from flowgen.flows.masks import ChannelMaskedCoupling, CheckerboardCoupling
from flowgen.flows.nets import CouplingNet, ZeroConv2d
from flowgen.flows.prior import LearnedPrior
from flowgen.flows.resnet import ResNet
from flowgen.flows.sequence import FlowSequence, set_memory
from flowgen.flows.split import Split
from flowgen.flows.squeeze import Squeeze

__all__ = ["MLP", "ActNorm", "AdditiveCoupling", "AdditiveMLPCoupling", "AffineCoupling",
           "BatchNormFlow", "ChannelMaskedCoupling", "CheckerboardCoupling", "CouplingNet",
           "DiagonalScaling", "Flow", "FlowSequence", "InvertibleConv1x1",
           "LUInvertibleConv1x1", "LearnedPrior", "ResNet", "Split", "Squeeze", "ZeroConv2d",
           "set_memory"]
