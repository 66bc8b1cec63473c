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
    """After each validation, sample ``n`` images at ``temperature`` and an interpolation strip of
    ``interpolation_steps`` frames between two latents (linear in every level; 0: none); save them
    as ``<dirpath>/step<global step>.png`` and ``interp-step<global step>.png``, and log them to
    W&B (keys ``samples``, ``interpolation``) when W&B logs. Fixed seeds: the same latents every
    time, so changes between pictures are the model's, not noise."""

    def __init__(self, n: int = 64, temperature: float = 0.7, dirpath: str | None = None,
                 seed: int = 0, interpolation_steps: int = 8):
        self.n, self.temperature, self.seed = n, temperature, seed
        self.dirpath = dirpath
        self.interpolation_steps = interpolation_steps

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        images = pl_module.sample_images(self.n, self.temperature, generator=generator)
        pictures = {"samples": (f"step{trainer.global_step:07d}.png",
                                make_grid(images.float().cpu(),
                                          nrow=math.ceil(math.sqrt(self.n)), padding=1))}
        if self.interpolation_steps > 1:
            generator.manual_seed(self.seed + 1)
            frames = pl_module.interpolation_images(self.interpolation_steps, self.temperature,
                                                    generator=generator)
            pictures["interpolation"] = (f"interp-step{trainer.global_step:07d}.png",
                                         make_grid(frames.float().cpu(), nrow=len(frames),
                                                   padding=1))
        for key, (name, grid) in pictures.items():
            if self.dirpath:
                Path(self.dirpath).mkdir(parents=True, exist_ok=True)
                save_image(grid, Path(self.dirpath) / name)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key, [grid], step=trainer.global_step,
                                     caption=[f"T={self.temperature}"])
