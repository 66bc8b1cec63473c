"""Invertible layers: the math. Each maps data -> latent in ``forward`` (see :class:`Flow`)."""

from flowgen.flows.actnorm import ActNorm
from flowgen.flows.base import Flow, FlowSequence
from flowgen.flows.coupling import AdditiveCoupling, AffineCoupling
from flowgen.flows.invconv import InvertibleConv1x1, LUInvertibleConv1x1
from flowgen.flows.nets import CouplingNet, ZeroConv2d
from flowgen.flows.prior import LearnedPrior
from flowgen.flows.split import Split
from flowgen.flows.squeeze import Squeeze

__all__ = ["ActNorm", "AdditiveCoupling", "AffineCoupling", "CouplingNet", "Flow", "FlowSequence",
           "InvertibleConv1x1", "LUInvertibleConv1x1", "LearnedPrior", "Split", "Squeeze",
           "ZeroConv2d"]
