"""Checkpoint callbacks that act only inside their own folder, whatever a loaded checkpoint says.

Lightning's ``ModelCheckpoint`` restores the paths it saved (best, last, the top k) from the
checkpoint it resumes from and later removes them, recursively, after a check that compares
``Path.parents`` without resolving ``..``: a crafted checkpoint naming
``<dirpath>/../../somewhere`` would delete ``somewhere``. Here every restored path is resolved
and kept only when it names a file directly inside ``dirpath`` (anything else is dropped), and a
removal goes through the same check.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)
warn = rank_zero_only(log.warning)

PATH_KEYS = ("best_model_path", "last_model_path", "kth_best_model_path")
SCORE_KEYS = ("best_model_score", "kth_value", "current_score")


class ConfinedCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` whose restored state names only files in its own ``dirpath``."""

    def confined(self, path: Any) -> str:
        """``path`` in Lightning's form (``dirpath/name``) if it names a file directly inside
        ``dirpath``, not through a link; else ``""``."""
        if not isinstance(path, str) or not path or "://" in path or self.dirpath is None:
            return ""
        given = Path(path)
        folder = Path(self.dirpath).resolve()
        resolved = given.resolve()
        if resolved.parent != folder or given.is_symlink() or resolved.is_dir():
            return ""
        return os.path.join(self.dirpath, resolved.name)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = {key: self.confined(state_dict.get(key)) for key in PATH_KEYS}
        for key in SCORE_KEYS:
            value = state_dict.get(key)
            state[key] = value if isinstance(value, torch.Tensor) and value.numel() == 1 else None
        best_k = state_dict.get("best_k_models")
        state["best_k_models"] = {
            self.confined(p): s for p, s in (best_k.items() if isinstance(best_k, dict) else ())
            if self.confined(p) and isinstance(s, torch.Tensor) and s.numel() == 1}
        state["dirpath"] = self.dirpath  # the folder of this run, not the file's word for it
        dropped = [k for k in PATH_KEYS if state_dict.get(k) and not state[k]]
        if dropped or len(state["best_k_models"]) < len(best_k or {}):
            warn("the resumed checkpoint names files outside %s (%s): ignored", self.dirpath,
                 ", ".join(dropped) or "best_k_models")
        super().load_state_dict(state)

    def _remove_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if self.confined(filepath):
            trainer.strategy.remove_checkpoint(filepath)


class BestCheckpoint(ConfinedCheckpoint):
    """The best checkpoint by ``monitor``; a NaN or infinite value is never the best (Lightning
    would keep it when no best exists yet, as ``best-step10-bpdnan.ckpt``)."""

    @property
    def state_key(self) -> str:
        # ModelCheckpoint's key: runs started when this was a plain ModelCheckpoint keep their best
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None
                            ) -> bool:
        if current is not None and not math.isfinite(float(current)):
            warn("%s is %s at step %d: not kept as a best checkpoint", self.monitor,
                 float(current), trainer.global_step)
            return False
        return super().check_monitor_top_k(trainer, current)
