"""flowgen checkpoints: what a saved model records, and loading one without running its code."""

from __future__ import annotations

from pathlib import Path

import torch

from flowgen.models.flow_model import FlowModel
from flowgen.models.folder import FORMAT_VERSION
from flowgen.models.registry import build_model
from flowgen.models.upgrade import upgrade_config, upgrade_weights

#: Where a checkpoint written with the EMA callback (Lightning's ``WeightAveraging``) keeps the
#: trained weights; its ``state_dict`` holds the averaged ones.
TRAINED_WEIGHTS = "current_model_state"


def model_metadata(model: FlowModel, n_bits: int) -> dict:
    """The plain-typed record (``checkpoint["flowgen"]``) from which :func:`load_model` rebuilds
    ``model``: architecture name, constructor arguments (recorded by the model itself) and the
    data's bit depth."""
    return {"format": FORMAT_VERSION, "arch": model.arch, "config": dict(model.config),
            "n_bits": int(n_bits)}


def read_torch_file(path: str | Path, map_location: str | torch.device = "cpu"):
    """What ``torch.load(path, weights_only=True)`` reads (no pickled code runs, whoever made the
    file), or a ``ValueError``/``FileNotFoundError`` that says what the file is and what to pass
    instead."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.ckpt"))[:3]
        hint = f"{path / found[0]}" if found else f"{path}/last.ckpt"
        raise ValueError(f"{path} is a folder, not a checkpoint file: pass one of its checkpoints, "
                         f"e.g. {hint}" + (f" (it holds {', '.join(found)})" if found else ""))
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (pass ckpt=checkpoints/<run>/"
                                f"last.ckpt)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        # Never repeat torch's advice to retry with weights_only=False: that runs the file's code.
        raise ValueError(f"{path} is not a readable flowgen checkpoint (not a torch file, "
                         f"truncated or empty, or holding objects beyond tensors and plain "
                         f"data): pass a checkpoint written by train.py") from err


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The contents of a flowgen checkpoint file (:func:`read_torch_file`), checked: a flowgen
    record, tensors only as weights, all finite. One reader for ``sample.py`` and ``train.py
    ckpt_path=``, so both entry points say the same thing."""
    path = Path(path)
    ckpt = read_torch_file(path, map_location)
    meta = ckpt.get("flowgen") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "arch" not in meta or not isinstance(
            ckpt.get("state_dict"), dict):
        raise ValueError(f"{path} is not a flowgen checkpoint (no 'flowgen' record): train one "
                         f"with train.py")
    for key in ("state_dict", TRAINED_WEIGHTS):
        if isinstance(ckpt.get(key), dict):
            check_finite_weights(path, ckpt[key], key)
    return ckpt


def check_finite_weights(path: str | Path, weights: dict, what: str = "state_dict") -> None:
    """A ``ValueError`` naming the first tensor of ``weights`` that is not a tensor or holds
    NaN/Inf: such a model samples NaN and trains on from garbage."""
    for name, value in weights.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: {what}[{name!r}] is not a tensor: not a flowgen checkpoint")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{path} holds non-finite weights (NaN/Inf in {what} {name}): the "
                             f"run diverged before it was saved; use an earlier checkpoint of "
                             f"the run or retrain with a lower learning rate")


def load_model(path: str | Path, map_location: str | torch.device = "cpu",
               prefix: str = "model.", ema: bool | None = None) -> tuple[FlowModel, dict]:
    """Rebuild the model saved in a checkpoint: ``(model in eval mode, metadata)``.

    The file is read by :func:`read_checkpoint` (``weights_only=True``: no pickled code runs)
    and the model is built from the allow-listed registry, never from a class path stored in
    the file.

    ``ema``: ``None`` loads the weights validation measured, the EMA weights when training kept
    them (``state_dict``; the trained ones are then in ``current_model_state``); ``True``
    requires the EMA weights, ``False`` loads the trained ones. ``metadata["ema"]`` says which.
    """
    path = Path(path)
    ckpt = read_checkpoint(path, map_location)
    meta = ckpt["flowgen"]
    has_ema = isinstance(ckpt.get(TRAINED_WEIGHTS), dict)
    if ema and not has_ema:
        raise ValueError(f"{path} has no EMA weights (trained with callbacks.ema=null or before "
                         f"EMA existed): use ema=false or ema=auto")
    weights = ckpt[TRAINED_WEIGHTS] if has_ema and ema is False else ckpt["state_dict"]
    fmt = checkpoint_format(meta)
    weights = upgrade_weights(weights, fmt, prefix)
    model = build_model(meta["arch"], upgrade_config(meta.get("config", {}), fmt))
    state = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the recorded architecture {meta['arch']} "
                         f"{meta.get('config')}: {str(err).splitlines()[0]}") from err
    return model.to(map_location).eval(), {**meta, "ema": has_ema and ema is not False}


def checkpoint_format(meta: dict) -> int:
    """The format of a checkpoint's ``flowgen`` record, or a clear error for a newer one."""
    fmt = meta.get("format", 1)
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise ValueError(f"checkpoint format {fmt!r} is not one flowgen wrote")
    if fmt > FORMAT_VERSION:
        raise ValueError(f"checkpoint format {fmt} is newer than this flowgen reads "
                         f"({FORMAT_VERSION}): update flowgen")
    return fmt
