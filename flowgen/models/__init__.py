"""Models: a transform and a base distribution, plain ``torch.nn`` (no Lightning, no Hydra)."""

from flowgen.models.checkpoint import load_model, model_metadata
from flowgen.models.coupling_mlp import CouplingMLP
from flowgen.models.flow_model import FlowModel
from flowgen.models.glow import Glow
from flowgen.models.maf import IAF, MAF
from flowgen.models.nice import NICE
from flowgen.models.realnvp import RealNVP
from flowgen.models.registry import MODELS, build_model

__all__ = ["IAF", "MAF", "MODELS", "NICE", "CouplingMLP", "FlowModel", "Glow", "RealNVP",
           "build_model", "load_model", "model_metadata"]
