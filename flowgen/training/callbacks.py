"""Callbacks that show people what the model does."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image


class SampleGrid(L.Callback):
    """After each validation, sample ``n`` images at ``temperature``, save the grid as
    ``<dirpath>/step<global step>.png`` and log it to W&B (key ``samples``) when W&B logs."""

    def __init__(self, n: int = 64, temperature: float = 0.7, dirpath: str | None = None,
                 seed: int = 0):
        self.n, self.temperature, self.seed = n, temperature, seed
        self.dirpath = dirpath

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        # A fixed seed shows the same latents every time: changes are the model's, not noise.
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        images = pl_module.sample_images(self.n, self.temperature, generator=generator)
        grid = make_grid(images.float().cpu(), nrow=math.ceil(math.sqrt(self.n)), padding=1)
        if self.dirpath:
            path = Path(self.dirpath) / f"step{trainer.global_step:07d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_image(grid, path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("samples", [grid], step=trainer.global_step,
                                 caption=[f"T={self.temperature}"])
