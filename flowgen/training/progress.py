"""The progress display: tqdm's bar on a terminal, a plain line every N steps elsewhere.

A SLURM log, a pipe or ``nohup`` is not a terminal: there tqdm's redraws become thousands of
lines (one per refresh), so a run writes one log line every ``every_n_steps`` steps instead.
Any progress bar given in ``callbacks`` wins (e.g. ``+callbacks.progress_bar._target_=
lightning.pytorch.callbacks.TQDMProgressBar +callbacks.progress_bar.refresh_rate=20``), and
``trainer.enable_progress_bar=false`` turns the display off.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

log = logging.getLogger(__name__)


class LineProgressBar(ProgressBar):
    """One log line every ``every_n_steps`` optimiser steps: the step, its share of
    ``max_steps``, the steps per second since the last line and the progress-bar metrics."""

    def __init__(self, every_n_steps: int = 100):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._last: tuple[int, float] | None = None  # (step, time) of the last line

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = (trainer.global_step, time.monotonic())

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs,
                           batch, batch_idx: int) -> None:
        step = trainer.global_step
        if not self._enabled or step % self.every_n_steps or self._last is None \
                or step == self._last[0]:
            return
        now = time.monotonic()
        rate = (step - self._last[0]) / max(now - self._last[1], 1e-9)
        self._last = (step, now)
        of = f"/{trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else ""
        metrics = self.get_metrics(trainer, pl_module)
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in metrics.items() if k != "v_num")
        log.info("step %d%s, %.2f steps/s%s", step, of, rate, f": {shown}" if shown else "")


def default_progress_bar(stream: TextIO | None = None, every_n_steps: int = 100) -> ProgressBar:
    """tqdm's bar when ``stream`` (stdout) is a terminal, else a :class:`LineProgressBar`."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return TQDMProgressBar()
    return LineProgressBar(every_n_steps)


def with_progress_bar(callbacks: list, enabled: bool | None, every_n_steps: int = 100) -> list:
    """``callbacks`` plus :func:`default_progress_bar` (a line every ``every_n_steps`` steps
    without a terminal) unless the display is off (``trainer.enable_progress_bar=false``) or
    one is already given."""
    if enabled is False or any(isinstance(c, ProgressBar) for c in callbacks):
        return callbacks
    return [*callbacks, default_progress_bar(every_n_steps=every_n_steps)]
