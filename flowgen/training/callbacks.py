"""Callbacks that show people what the model does."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image
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
            self._log_video(trainer, frames, f"interp-step{step:07d}.gif", step)
        for key, (name, grid) in pictures.items():
            if self.dirpath:
                Path(self.dirpath).mkdir(parents=True, exist_ok=True)
                save_image(grid, Path(self.dirpath) / name)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key, [grid], step=step, caption=[f"T={self.temperature}"])

    def _log_video(self, trainer: L.Trainer, frames: Tensor, name: str, step: int) -> None:
        """When W&B logs: the interpolation as a looping GIF next to its strip, logged as a
        video (W&B plays a GIF file as one: no video encoder needed). Without W&B the strip
        is the picture (sample.py mode=interpolate makes GIFs on demand)."""
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not wandb_loggers:
            return
        import wandb  # only here: a run without W&B never imports it

        folder = Path(self.dirpath or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        video = wandb.Video(str(save_gif(frames, folder / name)), format="gif")
        for logger in wandb_loggers:
            logger.log_metrics({"interpolation_video": video}, step=step)

    def _log_health(self, trainer: L.Trainer, health) -> None:
        metrics = {"val/nonfinite_samples": health.nonfinite_fraction,
                   "val/out_of_range_samples": health.out_of_range / health.n_samples}
        for logger in trainer.loggers:  # straight to the loggers: this hook runs on rank 0 only
            logger.log_metrics(metrics, step=trainer.global_step)
        if health.nonfinite:
            log.warning("step %d: %s at T=%s (red tiles in the grid): the decoder overflows",
                        trainer.global_step, health.describe(), self.temperature)


def save_gif(frames: Tensor, path: Path, frame_ms: int = 120) -> Path:
    """Frames in [0, 1] ``[steps, C, H, W]`` -> a GIF looping forward then back (sample.py's
    writer is in sampling/, which training/ may not import)."""
    seq = torch.cat([frames, frames.flip(0)[1:-1]])
    arrays = (seq * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    images = [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=frame_ms, loop=0)
    return path


class NamespacedLRMonitor(LearningRateMonitor):
    """Lightning's LearningRateMonitor with its keys in the ``train/`` namespace: ``train/lr``
    (not ``lr-Adam``), ``train/momentum``, ``train/weight_decay``; parameter groups keep their
    ``/<group>`` suffix. flowgen has one optimizer, so its class name adds nothing to the key."""

    _KEY = re.compile(r"lr-[^/]+?(?P<group>/.+?)?(?:-(?P<stat>momentum|weight_decay))?")

    def _extract_stats(self, trainer: L.Trainer, interval: str) -> dict[str, Tensor]:
        return {self.namespaced(k): v for k, v in super()._extract_stats(trainer, interval).items()}

    @classmethod
    def namespaced(cls, key: str) -> str:
        """``lr-Adam`` -> ``train/lr``, ``lr-Adam/pg2-momentum`` -> ``train/momentum/pg2``."""
        match = cls._KEY.fullmatch(key)
        if match is None:  # a scheduler's own ``name``: keep it, under train/
            return f"train/{key}"
        return f"train/{match['stat'] or 'lr'}{match['group'] or ''}"
