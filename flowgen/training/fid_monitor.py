"""FID during training (off by default): ``callbacks.fid.every_n_validations=5``."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from flowgen.checks import Choice, Int, Real, Text, nullable
from flowgen.diagnostics import display_pixels
from flowgen.objectives.fid import (
    FID_WEIGHTS_FILE,
    FrechetDistance,
    InceptionFeatures,
    StandInFeatures,
)
from flowgen.training.callbacks import decoded

log = logging.getLogger(__name__)

FEATURES = ("inception", "standin")
#: train.py's options of the callback (configs/task/image_density.yaml), checked before any
#: work like every other option.
OPTIONS = {
    "callbacks.fid.every_n_validations": (Int(0), "0: off; e.g. 5"),
    "callbacks.fid.n": (Int(2, 50_000), "e.g. 1000 (10000 for figures comparable to papers)"),
    "callbacks.fid.temperature": (Real(0), "typically 0.7-1.0"),
    "callbacks.fid.features": (Choice(FEATURES), "inception needs inception_weights"),
    "callbacks.fid.inception_weights": (nullable(Text()), f"a path to {FID_WEIGHTS_FILE}"),
    "callbacks.fid.batch_size": (Int(1, 4096), "e.g. 100"),
}


def check_fid_options(cfg: DictConfig) -> None:
    """FID switched on with the Inception but no weights file: one line before any work."""
    node = (cfg.get("callbacks") or {}).get("fid")
    if not node or not node.get("every_n_validations") or node.get("features") != "inception":
        return
    weights = node.get("inception_weights")
    if not weights or not Path(str(weights)).expanduser().is_file():
        raise ValueError(f"callbacks.fid.every_n_validations={node.every_n_validations} needs "
                         f"the FID Inception weights in a local file (no download at run time):"
                         f" callbacks.fid.inception_weights=<path to {FID_WEIGHTS_FILE}> "
                         f"(now {weights}), or callbacks.fid.features=standin for a smoke test")


class FIDMonitor(L.Callback):
    """After every ``every_n_validations``-th validation (0: never), the FID of ``n`` samples
    at ``temperature`` against the first ``n`` validation images, logged as ``val/fid`` to
    every logger (rank zero computes it alone; the others do not wait).

    The validation images' features are computed once, at the first FID. Samples come from a
    generator seeded with ``seed`` every time, so successive values differ by the model alone.
    Non-finite samples make FID undefined: that validation logs no ``val/fid`` and warns (the
    sample grid's ``val/nonfinite_samples`` counts them). ``features``: ``inception`` (the FID
    network, weights from ``inception_weights``) or ``standin`` (a fixed small network: smoke
    tests, not comparable to published figures)."""

    def __init__(self, every_n_validations: int = 0, n: int = 1000, temperature: float = 1.0,
                 features: str = "inception", inception_weights: str | None = None,
                 batch_size: int = 100, seed: int = 0) -> None:
        if every_n_validations < 0:
            raise ValueError(f"every_n_validations must be >= 0, got {every_n_validations}")
        self.every, self.n, self.temperature = every_n_validations, n, temperature
        self.features, self.weights = features, inception_weights
        self.batch_size, self.seed = batch_size, seed
        self._validations = 0
        self._scorer: FrechetDistance | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.every:
            return
        self._validations += 1
        if self._validations % self.every or not trainer.is_global_zero:
            return
        fake = self._samples(pl_module)
        if fake is None:
            return
        value = self._scorer_for(trainer, pl_module)(fake.split(self.batch_size))
        for logger in trainer.loggers:  # straight to the loggers: only rank zero gets here
            logger.log_metrics({"val/fid": value}, step=trainer.global_step)
        log.info("step %d: val/fid %.4f (%d samples at T=%s, %s features)",
                 trainer.global_step, value, self.n, self.temperature, self.features)

    def _samples(self, pl_module: L.LightningModule) -> torch.Tensor | None:
        """uint8 ``[n, C, H, W]`` samples, or None (with a warning) when some are non-finite."""
        model = pl_module.model
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        batches = []
        for start in range(0, self.n, self.batch_size):
            size = min(self.batch_size, self.n - start)
            batches.append(decoded(model, lambda size=size: model.sample_latents(
                size, self.temperature, generator)))
        pixels, health = display_pixels(torch.cat(batches), pl_module.n_bits)
        if health.nonfinite:
            log.warning("val/fid skipped: %s at T=%s, FID is undefined", health.describe(),
                        self.temperature)
            return None
        return (pixels * 255).round().to(torch.uint8)

    def _scorer_for(self, trainer: L.Trainer, pl_module: L.LightningModule) -> FrechetDistance:
        if self._scorer is None:
            features = (StandInFeatures() if self.features == "standin"
                        else InceptionFeatures(self.weights or "<unset>"))
            val_set = trainer.datamodule.val_set
            n_real = min(self.n, len(val_set))
            real = (torch.stack([torch.as_tensor(val_set[i][0])
                                 for i in range(start, min(start + self.batch_size, n_real))])
                    for start in range(0, n_real, self.batch_size))
            self._scorer = FrechetDistance(real, features, pl_module.device)
        return self._scorer
