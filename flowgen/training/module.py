"""The LightningModule: a flow trained by maximum likelihood, reported in bits per dimension."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor

from flowgen.data.quantization import bits_per_dim, postprocess, preprocess
from flowgen.models import MultiScaleFlow, model_metadata


class FlowModule(L.LightningModule):
    """Trains ``model`` on batches ``(uint8 images [B, C, H, W], labels [B])``.

    The loss is the bits per dimension of the dequantised batch (``train/bpd``, ``val/bpd``).
    ``optimizer`` is a partial optimiser (Hydra ``_partial_: true``) completed with the
    parameters; the learning rate warms up linearly over ``warmup_steps`` optimiser steps.
    ActNorm layers initialise from the first training batch, before the first optimiser step.
    """

    def __init__(self, model: MultiScaleFlow,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 n_bits: int = 8, warmup_steps: int = 0):
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.n_bits = n_bits
        self.warmup_steps = warmup_steps

    def bpd(self, pixels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Bits per dimension ``[B]`` of uint8 images, with fresh dequantisation noise."""
        x = preprocess(pixels, self.n_bits, generator=generator)
        return bits_per_dim(self.model.log_prob(x), self.model.num_dims, self.n_bits)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        loss = self.bpd(batch[0]).mean()
        self.log("train/bpd", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        bpd = self.bpd(batch[0])
        # batch_size weights the epoch mean, so uneven last batches average exactly.
        self.log("val/bpd", bpd.mean(), prog_bar=True, sync_dist=True,
                 batch_size=bpd.shape[0])

    test_step = validation_step

    @torch.no_grad()
    def sample_images(self, n: int, temperature: float = 0.7,
                      generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples as images in ``[0, 1]``, ``[n, C, H, W]``."""
        was_training = self.model.training
        self.model.eval()
        try:
            return postprocess(self.model.sample(n, temperature, generator=generator),
                               self.n_bits)
        finally:
            self.model.train(was_training)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.warmup_steps <= 1:
            return optimizer
        # Step t (from 0) trains at lr * (t + 1) / warmup_steps, reaching lr at the last one.
        warmup = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1.0 / self.warmup_steps, total_iters=self.warmup_steps - 1)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": warmup, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["flowgen"] = model_metadata(self.model, self.n_bits)
