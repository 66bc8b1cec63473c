"""Callbacks that show people what the model does."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid, save_image

from flowgen.diagnostics import display_pixels
from flowgen.latent_paths import interpolate_latents

log = logging.getLogger(__name__)


@torch.no_grad()
def decoded(model, latents: Callable[[], list[Tensor]]) -> Tensor:
    """Decode ``latents()`` (one ``[N, *shape]`` per level) with ``model`` in eval mode, into
    model space ``[N, C, H, W]`` (not clamped to pixels: broken samples stay visible)."""
    was_training = model.training
    model.eval()
    try:
        return model.decode(latents()).float().cpu()
    finally:
        model.train(was_training)


class SampleGrid(L.Callback):
    """After each validation, sample ``n`` images at ``temperature`` and an interpolation strip of
    ``interpolation_steps`` frames between two latents (linear in every level; 0: none); save them
    as ``<dirpath>/step<global step>.png`` and ``interp-step<global step>.png``, and log them to
    W&B (keys ``samples``, ``interpolation``) when W&B logs. Fixed seeds: the same latents every
    time, so changes between pictures are the model's, not noise.

    The fraction of the ``n`` samples with non-finite values (drawn as red tiles) is logged to
    every logger as ``val/nonfinite_samples``, and that of finite samples outside model space
    as ``val/out_of_range_samples``: an overflowing decoder shows in the metrics."""

    def __init__(self, n: int = 64, temperature: float = 0.7, dirpath: str | None = None,
                 seed: int = 0, interpolation_steps: int = 8):
        self.n, self.temperature, self.seed = n, temperature, seed
        self.dirpath = dirpath
        self.interpolation_steps = interpolation_steps

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        model, n_bits, step = pl_module.model, pl_module.n_bits, trainer.global_step
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        samples = decoded(model, lambda: model.sample_latents(self.n, self.temperature,
                                                              generator))
        images, health = display_pixels(samples, n_bits)
        self._log_health(trainer, health)
        pictures = {"samples": (f"step{step:07d}.png",
                                make_grid(images, nrow=math.ceil(math.sqrt(self.n)), padding=1))}
        if self.interpolation_steps > 1:
            generator.manual_seed(self.seed + 1)
            ends = [model.sample_latents(1, self.temperature, generator) for _ in range(2)]
            frames = decoded(model, lambda: interpolate_latents(*ends, self.interpolation_steps,
                                                                method="linear"))
            frames = display_pixels(frames, n_bits)[0]
            pictures["interpolation"] = (f"interp-step{step:07d}.png",
                                         make_grid(frames, nrow=len(frames), padding=1))
        for key, (name, grid) in pictures.items():
            if self.dirpath:
                Path(self.dirpath).mkdir(parents=True, exist_ok=True)
                save_image(grid, Path(self.dirpath) / name)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key, [grid], step=step, caption=[f"T={self.temperature}"])

    def _log_health(self, trainer: L.Trainer, health) -> None:
        metrics = {"val/nonfinite_samples": health.nonfinite_fraction,
                   "val/out_of_range_samples": health.out_of_range / health.n_samples}
        for logger in trainer.loggers:  # straight to the loggers: this hook runs on rank 0 only
            logger.log_metrics(metrics, step=trainer.global_step)
        if health.nonfinite:
            log.warning("step %d: %s at T=%s (red tiles in the grid): the decoder overflows",
                        trainer.global_step, health.describe(), self.temperature)
