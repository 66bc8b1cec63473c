"""Training: the only layer that knows Lightning."""

from flowgen.training.callbacks import SampleGrid
from flowgen.training.module import FlowModule
from flowgen.training.train import build, train

__all__ = ["FlowModule", "SampleGrid", "build", "train"]
