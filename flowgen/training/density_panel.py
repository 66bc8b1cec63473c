"""The 2-D picture callback: training data | learned density | samples after validation."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from flowgen.plots import density_panel

log = logging.getLogger(__name__)


class DensityPanel(L.Callback):
    """After every ``every_n_validations``-th validation, draw :func:`flowgen.plots.density_panel`
    for a model of 2-D vectors: ``n_samples`` training points (``trainer.datamodule.points``),
    ``exp(model.log_prob)`` on a ``resolution``-pixel grid and ``n_samples`` model samples.

    Saves ``<dirpath>/density-step<global step, 6 digits>.png``, logs it to W&B as
    ``val/density`` when a :class:`WandbLogger` is attached, and logs ``val/nonfinite_density``
    (grid pixels where the log-density is NaN or +-inf, drawn red) and ``val/nonfinite_samples``
    (the fraction of samples with a non-finite coordinate). Drawn on rank zero only, with the
    model in eval mode and without gradients; samples come from a generator seeded with ``seed``
    every time, so successive pictures differ by the model alone.

    The model needs ``sample(n, temperature=1.0, cond=None, generator=...) -> [n, 2]`` and
    ``log_prob(x [N, 2]) -> [N]``; the datamodule ``points(split, n) -> [n, 2]``. A model whose
    ``event_shape`` is not ``(2,)`` (vectors of other sizes) gets no picture.
    """

    def __init__(self, dirpath: str | None = None, n_samples: int = 20_000,
                 every_n_validations: int = 1, resolution: int = 200, seed: int = 0,
                 chunk: int = 8192) -> None:
        if every_n_validations < 1:
            raise ValueError(f"every_n_validations must be >= 1, got {every_n_validations}")
        self.dirpath, self.n_samples, self.every = dirpath, n_samples, every_n_validations
        self.resolution, self.seed, self.chunk = resolution, seed, chunk
        self._validations = 0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        shape = tuple(getattr(pl_module.model, "event_shape", (2,)))
        if shape != (2,):  # a picture of the plane: other data (data=npz_vectors, D=5) has none
            if not self._validations:
                log.info("density panel skipped: the data's samples have shape %s, not (2,)",
                         list(shape))
            self._validations += 1
            return
        self._validations += 1
        if (self._validations - 1) % self.every:
            return
        if not trainer.is_global_zero:
            return
        # pl_module.log with rank_zero_only=True: only this process draws, and no other rank
        # waits for it (the keys cannot be checkpoint monitors, which is right for a picture)
        nonfinite, bad_samples = self._draw(trainer, pl_module)
        pl_module.log("val/nonfinite_density", float(nonfinite), rank_zero_only=True)
        pl_module.log("val/nonfinite_samples", bad_samples, rank_zero_only=True)

    @torch.no_grad()
    def _draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[int, float]:
        datamodule = trainer.datamodule
        if not hasattr(datamodule, "points"):
            raise TypeError(f"DensityPanel needs a datamodule with points(split, n) (2-D toy "
                            f"data, e.g. data=two_moons), got {type(datamodule).__name__}")
        model, device, step = pl_module.model, pl_module.device, trainer.global_step
        was_training = model.training
        model.eval()
        try:
            generator = torch.Generator(device).manual_seed(self.seed)
            samples = model.sample(self.n_samples, temperature=1.0, cond=None,
                                   generator=generator).float().cpu()

            def log_prob(points: Tensor) -> Tensor:
                return model.log_prob(points.to(device)).float().cpu()

            image, nonfinite = density_panel(datamodule.points("train", self.n_samples),
                                             log_prob, samples, resolution=self.resolution,
                                             chunk=self.chunk)
        finally:
            model.train(was_training)
        bad_samples = (~samples.isfinite().all(1)).float().mean().item() if len(samples) else 0.0
        if nonfinite or bad_samples:
            log.warning("step %d: log-density non-finite at %d of %d grid pixels (red), %.2f%% "
                        "of samples non-finite", step, nonfinite, self.resolution**2,
                        100 * bad_samples)
        if self.dirpath:
            Path(self.dirpath).mkdir(parents=True, exist_ok=True)
            image.save(Path(self.dirpath) / f"density-step{step:06d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="val/density", images=[image], step=step)
        return nonfinite, bad_samples
