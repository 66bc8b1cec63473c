"""Training: the only layer that knows Lightning."""

from flowgen.training.callbacks import SampleGrid
from flowgen.training.ema import EMA
from flowgen.training.module import FlowModule
from flowgen.training.train import build, train

__all__ = ["EMA", "FlowModule", "SampleGrid", "build", "train"]
