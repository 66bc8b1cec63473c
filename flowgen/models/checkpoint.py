"""flowgen checkpoints: what a saved model records, and loading one without running its code."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from flowgen.models.multiscale import MultiScaleFlow
from flowgen.models.registry import build_model

FORMAT_VERSION = 1
#: Where a checkpoint written with the EMA callback (Lightning's ``WeightAveraging``) keeps the
#: trained weights; its ``state_dict`` holds the averaged ones.
TRAINED_WEIGHTS = "current_model_state"


def model_metadata(model: MultiScaleFlow, n_bits: int) -> dict:
    """The plain-typed record (``checkpoint["flowgen"]``) from which :func:`load_model` rebuilds
    ``model``: architecture name, constructor arguments and the data's bit depth."""
    return {"format": FORMAT_VERSION, "arch": model.arch, "config": dict(model.config),
            "n_bits": int(n_bits)}


def load_model(path: str | Path, map_location: str | torch.device = "cpu",
               prefix: str = "model.", ema: bool | None = None) -> tuple[MultiScaleFlow, dict]:
    """Rebuild the model saved in a checkpoint: ``(model in eval mode, metadata)``.

    The file is read with ``weights_only=True`` (no pickled code runs) and the model is built from
    the allow-listed registry, never from a class path stored in the file.

    ``ema``: ``None`` loads the weights validation measured, the EMA weights when training kept
    them (``state_dict``; the trained ones are then in ``current_model_state``); ``True``
    requires the EMA weights, ``False`` loads the trained ones. ``metadata["ema"]`` says which.
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
    has_ema = isinstance(ckpt.get(TRAINED_WEIGHTS), dict)
    if ema and not has_ema:
        raise ValueError(f"{path} has no EMA weights (trained with callbacks.ema=null or before "
                         f"EMA existed): use ema=false or ema=auto")
    weights = ckpt[TRAINED_WEIGHTS] if has_ema and ema is False else ckpt["state_dict"]
    model = build_model(meta["arch"], meta.get("config", {}))
    state = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the recorded architecture {meta['arch']} "
                         f"{meta.get('config')}: {str(err).splitlines()[0]}") from err
    return model.to(map_location).eval(), {**meta, "ema": has_ema and ema is not False}
