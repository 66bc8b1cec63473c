"""flowgen checkpoints: what a saved model records, and loading one without running its code."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from flowgen.models.multiscale import MultiScaleFlow
from flowgen.models.registry import build_model

FORMAT_VERSION = 1


def model_metadata(model: MultiScaleFlow, n_bits: int) -> dict:
    """The plain-typed record (``checkpoint["flowgen"]``) from which :func:`load_model` rebuilds
    ``model``: architecture name, constructor arguments and the data's bit depth."""
    return {"format": FORMAT_VERSION, "arch": model.arch, "config": dict(model.config),
            "n_bits": int(n_bits)}


def load_model(path: str | Path, map_location: str | torch.device = "cpu",
               prefix: str = "model.") -> tuple[MultiScaleFlow, dict]:
    """Rebuild the model saved in a checkpoint: ``(model in eval mode, metadata)``.

    The file is read with ``weights_only=True`` (no pickled code runs) and the model is built from
    the allow-listed registry, never from a class path stored in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (pass ckpt=checkpoints/<run>/"
                                f"last.ckpt)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        # torch's own message suggests weights_only=False: exactly what must not be done here.
        raise ValueError(f"{path} is not a readable flowgen checkpoint (truncated, not a torch "
                         f"file, or holding objects beyond tensors and plain data)") from err
    meta = ckpt.get("flowgen") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "arch" not in meta or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not a flowgen checkpoint (no 'flowgen' record): train one "
                         f"with train.py")
    model = build_model(meta["arch"], meta.get("config", {}))
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the recorded architecture {meta['arch']} "
                         f"{meta.get('config')}: {str(err).splitlines()[0]}") from err
    return model.to(map_location).eval(), meta
