"""The allow-list of architectures a checkpoint may name."""

from __future__ import annotations

from flowgen.models.coupling_mlp import CouplingMLP
from flowgen.models.flow_model import FlowModel
from flowgen.models.glow import Glow
from flowgen.models.maf import IAF, MAF
from flowgen.models.nice import NICE
from flowgen.models.realnvp import RealNVP

MODELS: dict[str, type[FlowModel]] = {"glow": Glow, "realnvp": RealNVP, "nice": NICE,
                                      "coupling_mlp": CouplingMLP, "maf": MAF, "iaf": IAF}


def _scalar(value) -> bool:
    return isinstance(value, (bool, int, float, str, type(None)))


def _plain(value) -> bool:
    """A scalar, or a flat list of scalars (an ``event_shape``)."""
    return _scalar(value) or isinstance(value, list) and all(_scalar(v) for v in value)


def build_model(arch: str, config: dict) -> FlowModel:
    """Build the architecture named ``arch`` from plain constructor arguments."""
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(MODELS)}")
    if not isinstance(config, dict) or not all(_plain(v) for v in config.values()):
        raise ValueError(f"architecture config must hold plain values, got {config!r}")
    try:
        return MODELS[arch](**config)
    except TypeError as err:
        raise ValueError(f"config {config} does not fit architecture {arch!r}: {err}") from err
