"""An exponential moving average (EMA) of the weights, kept by Lightning's ``WeightAveraging``."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch import Tensor


class EMA(WeightAveraging):
    """After every optimiser step, ``ema <- ema + (1 - decay) * (weights - ema)`` for every
    floating-point parameter and buffer (batch norm's running statistics included); integer and
    boolean buffers (ActNorm's ``initialized``, permutation indices) are copied, not averaged.

    The first update copies the model as it is after the first optimiser step, ActNorm's
    data-dependent initialisation included. ``warmup``: the update after ``n`` earlier ones uses
    ``min(decay, (1 + n) / (10 + n))``, so the average of a short run is not dominated by its
    first, untrained weights (``decay=0.999`` is reached after 9,000 updates).

    As in Lightning's ``WeightAveraging``: validation, hence ``val/bpd``, the best checkpoint and
    the sample grids, uses the EMA weights; a checkpoint's ``state_dict`` holds the EMA weights,
    ``current_model_state`` the trained ones and ``averaging_state`` the update count (tensors
    only: it loads with ``weights_only=True``); resuming restores both; after ``fit`` the module
    holds the EMA weights. Unlike it, the two are swapped, never copied, so a checkpoint written
    during validation or after ``fit`` still keeps them apart. ``device``: where the average
    lives (default: with the module, on its training device).
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True,
                 device: torch.device | str | None = None):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ema decay must be in [0, 1] (typically 0.999 to 0.9999), got "
                             f"{decay}")
        super().__init__(device=device, use_buffers=True, multi_avg_fn=self._update)
        self.decay, self.warmup = float(decay), warmup
        self._module_holds_average = False  # True while the module has the EMA weights
        self._swap_back_after_validation = False

    def decay_after(self, n: Tensor) -> Tensor:
        """The decay of the update that follows ``n`` earlier ones (tensor in, tensor out: no
        host-device sync)."""
        n = n.double()
        if not self.warmup:
            return torch.full_like(n, self.decay)
        return ((1 + n) / (10 + n)).clamp(max=self.decay)

    @torch.no_grad()
    def _update(self, averages: list[Tensor], currents: list[Tensor], n: Tensor) -> None:
        # AveragedModel calls this once per (device, dtype) group: all floats or none.
        if averages[0].is_floating_point():
            weight = (1 - self.decay_after(n)).to(averages[0].dtype)
            # lerp leaves a constant buffer (an LU permutation, a mask) bit for bit unchanged
            torch._foreach_lerp_(averages, currents, [weight] * len(averages))
        else:
            for average, current in zip(averages, currents, strict=True):
                average.copy_(current)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self._module_holds_average = False
            self._swap_back_after_validation = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # setup() copied the module before the strategy moved it to its device: follow it there,
        # or every update would copy all weights to the host.
        if self._device is None and self._average_model is not None:
            self._average_model.to(pl_module.device)

    def _hold_average(self, pl_module: L.LightningModule, hold: bool) -> None:
        """Put the EMA weights into ``pl_module`` (and the trained ones into the average's place)
        or back. Swapping, never copying, keeps the trained weights for the checkpoints."""
        if self._average_model is not None and hold != self._module_holds_average:
            self._swap_models(pl_module)
            self._module_holds_average = hold

    # For the whole of validation, not only its epoch hooks: every callback's validation hooks
    # (the sample grids) then see the EMA weights whatever the callback order, and ModelCheckpoint,
    # which Lightning runs last in on_validation_end, sees the trained ones back.
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_back_after_validation = not self._module_holds_average
        self._hold_average(pl_module, True)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._swap_back_after_validation:
            self._hold_average(pl_module, False)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # swapped in on_validation_start

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # swapped back in on_validation_end

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The module ends with the EMA weights, as in Lightning, but by a swap: a checkpoint
        # saved after this (the final last.ckpt) still gets the trained weights.
        self._hold_average(pl_module, True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if self._module_holds_average and "current_model_state" in checkpoint:
            # The module holds the EMA weights (saved during validation or after training):
            # Lightning's two entries are the other way round.
            checkpoint["state_dict"], checkpoint["current_model_state"] = (
                checkpoint["current_model_state"], checkpoint["state_dict"])
