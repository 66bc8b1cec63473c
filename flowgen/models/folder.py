"""The on-disk layout of a saved model folder and the format of flowgen's model records; imports
nothing of flowgen, so both the writer (:class:`FlowModel`) and the reader can use it."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file
from torch import Tensor

#: 2: models are FlowModels (transform + base), configs record event_shape (see upgrade.py)
FORMAT_VERSION = 2
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def write_model_folder(directory: str | Path, record: dict, weights: dict[str, Tensor]) -> Path:
    """``record`` to ``config.json`` and ``weights`` to ``model.safetensors`` in ``directory``
    (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share memory: every weight gets its own copy
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in weights.items()},
              str(directory / WEIGHTS_NAME))
    (directory / CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n")
    return directory
