"""Exact resume: what a checkpoint needs beyond Lightning's defaults, and when to write it.

Lightning restores the weights, the optimiser, the schedulers, the loop counters, the callbacks'
states and a stateful train loader (``flowgen.data.base.ResumableLoader``: the data order).
:class:`RandomState` adds the global random generators, which draw the dequantisation noise,
and :class:`ResumeCheckpoint` writes ``last.ckpt`` often enough to lose little, at the end of
training, and when SIGTERM stops the run. A run killed at any step and resumed from its last
checkpoint then ends with the same weights as one that was never interrupted (deterministic
CPU settings; tested with SIGKILL and SIGTERM in ``tests/training/test_resume.py``).
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from flowgen.training.confined import ConfinedCheckpoint


def get_rng_state() -> dict[str, Any]:
    """The global generators' states as tensors and plain Python values, which
    ``torch.load(weights_only=True)`` accepts (numpy's and Python's own types it would not)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": [version, list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(L.Callback):
    """Saves the global random generators in every checkpoint and restores them when training
    resumes, just before the first resumed batch is loaded.

    Validation runs on a fork of the generators: its noise leaves the training stream where it
    was, because a resumed run skips the validation that followed a checkpoint taken at the end
    of a training step, and must still draw the same noise for the next step.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None
        self._before_validation: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        # A checkpoint written during validation records the training stream, not the fork.
        return self._before_validation or get_rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not at load time: model building and the sanity check draw from the generators after.
        if self._to_restore is not None:
            set_rng_state(self._to_restore)
            self._to_restore = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._before_validation = get_rng_state()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._before_validation is not None:
            set_rng_state(self._before_validation)
            self._before_validation = None


class ResumeCheckpoint(ConfinedCheckpoint):
    """``<dirpath>/last.ckpt`` every ``every_n_train_steps`` optimiser steps, at the end of
    training, and when SIGTERM stops the run (what SLURM sends before preemption or after a
    requeue).

    On SIGTERM Lightning finishes the current training step (and a validation under way) and
    raises ``SIGTERMException`` (a ``SystemExit`` with code 0). This callback saves the state
    after that step at the first point that Lightning 2.6 resumes from exactly: the end of the
    step, else the end of the validation, else the exception if the epoch is not over yet. (A
    state saved at or after an epoch's end resumes into the wrong epoch: if the signal lands in
    the few milliseconds between this callback's step-end hook and the end of an epoch, the
    previous ``last.ckpt`` is kept.) Writes go through the trainer's checkpoint IO (atomic in
    flowgen's trainer configs).

    A ``last.ckpt`` taken at a step that is followed by a validation is written again after
    it, so that it records what that validation did (the best checkpoint it kept): a run
    resumed from it does not repeat that validation. Always ``last.ckpt``, never ``last-v1``.
    """

    def __init__(self, dirpath: str, every_n_train_steps: int = 100) -> None:
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0,
                         every_n_train_steps=every_n_train_steps, enable_version_counter=False)

    def _save_last_now(self, trainer: L.Trainer) -> None:
        # skips the sanity check and a step already saved
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        super().on_train_batch_end(trainer, pl_module, *args)
        if trainer.received_sigterm:
            self._save_last_now(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if self._last_global_step_saved == trainer.global_step and self.last_model_path:
            # saved before this validation (checkpoint callbacks run after the others, the best
            # checkpoint's included): again, now with the validation's outcome
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        elif trainer.received_sigterm:  # it came during validation
            self._save_last_now(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last_now(trainer)  # the final step, whether or not it is a multiple of n

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        # Only SIGTERM stops at a step boundary; another exception may leave a half-done step.
        if isinstance(exception, SIGTERMException):
            epoch = trainer.fit_loop.epoch_progress.current
            if epoch.processed < epoch.started:  # mid-epoch
                self._save_last_now(trainer)  # unless saved at this step already
            rank_zero_info(f"SIGTERM at step {trainer.global_step}; last checkpoint: "
                           f"{self.last_model_path} (step {self._last_global_step_saved})")
