"""Numerical faults: a step with non-finite gradients is skipped, counted and logged."""

from __future__ import annotations

import lightning as L
import torch

from flowgen.errors import FlowgenError


class TrainingDiverged(FlowgenError, RuntimeError):
    """Too many non-finite steps in a row: the run stopped (``last.ckpt`` was saved first)."""


class NonFiniteStepGuard(L.Callback):
    """Skip the optimiser step when any gradient (hence the loss) is NaN or Inf.

    Runs after backward and before clipping and the step: it sets every gradient to ``None``,
    which Adam, Adamax and SGD treat as "no update" (their moments are left untouched too), logs
    ``train/skipped_steps``, and after ``max_consecutive`` skipped steps in a row stops the run:
    training ends after that step (so ``last.ckpt`` is saved, with the weights from before the
    first bad step) and ``fit`` then raises :class:`TrainingDiverged` naming the step. One host
    sync per step (the finiteness flag).
    """

    def __init__(self, max_consecutive: int = 20):
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.in_a_row = 0
        self.stopped: str | None = None  # why the run was stopped, once it was

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        if not grads:
            return
        finite = bool(torch.stack(torch._foreach_norm(grads)).isfinite().all())
        if finite:
            self.in_a_row = 0
        else:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
            self.skipped += 1
            self.in_a_row += 1
        pl_module.log("train/skipped_steps", float(self.skipped))
        if self.in_a_row >= self.max_consecutive and self.stopped is None:
            self.stopped = (
                f"{self.in_a_row} training steps in a row up to step {trainer.global_step} had a "
                f"NaN/Inf loss or gradient ({self.skipped} skipped in all); the weights (and "
                f"last.ckpt) are those before the first of them. Usual fixes: a lower learning "
                f"rate (optim.optimizer.lr), a longer warm-up (optim.warmup_steps), additive "
                f"coupling (model.coupling=additive), or gradient clipping "
                f"(trainer.gradient_clip_val)")
            trainer.should_stop = True  # ends after this step: on_train_end saves last.ckpt

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stopped is not None:
            raise TrainingDiverged(self.stopped)

    def state_dict(self) -> dict:
        return {"skipped": self.skipped, "in_a_row": self.in_a_row}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skipped = state_dict["skipped"]
        self.in_a_row = state_dict["in_a_row"]
