"""A model as a folder: ``config.json`` (what to build) and ``model.safetensors`` (the weights),
the Hugging Face layout, readable offline and without running any code from the files."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from flowgen.models.checkpoint import check_finite_weights
from flowgen.models.flow_model import FlowModel
from flowgen.models.folder import CONFIG_NAME, WEIGHTS_NAME
from flowgen.models.registry import build_model


def save_pretrained(model: FlowModel, directory: str | Path, n_bits: int | None = None) -> Path:
    """Write ``model`` to ``directory``: :meth:`FlowModel.save_pretrained`."""
    return model.save_pretrained(directory, n_bits)


def from_pretrained(directory: str | Path, map_location: str | torch.device = "cpu"
                    ) -> FlowModel:
    """The model saved by :func:`save_pretrained` in ``directory``, in eval mode, with
    ``n_bits`` set from its record. Only registered architectures are built; the weights are
    read by safetensors (no pickle) and must fit the architecture exactly and be finite."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: pass a folder written by "
                                    f"save_pretrained (config.json and model.safetensors)")
    try:
        record = json.loads(config_path.read_text())
        arch, config = record["arch"], record["config"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{config_path} is not a flowgen model record ({err})") from err
    model = build_model(arch, config)
    try:
        weights = load_file(str(weights_path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(f"{weights_path} is not a readable safetensors file: {err}") from err
    check_finite_weights(weights_path, weights, "weights")
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(f"{weights_path}: weights do not fit {arch} {config}: "
                         f"{str(err).splitlines()[0]}") from err
    model.n_bits = record.get("n_bits")
    return model.to(map_location).eval()
