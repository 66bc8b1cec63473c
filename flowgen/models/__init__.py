"""Models: compositions of flows and priors, plain ``torch.nn`` (no Lightning, no Hydra)."""

from flowgen.models.checkpoint import load_model, model_metadata
from flowgen.models.glow import Glow
from flowgen.models.multiscale import MultiScaleFlow
from flowgen.models.registry import MODELS, build_model

__all__ = ["MODELS", "Glow", "MultiScaleFlow", "build_model", "load_model", "model_metadata"]
