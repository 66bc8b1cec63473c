"""The LightningModule: a flow trained by maximum likelihood, reported in bits per dimension."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

from flowgen.data.quantization import bits_per_dim, postprocess, preprocess
from flowgen.models import MultiScaleFlow, model_metadata
from flowgen.models.checkpoint import TRAINED_WEIGHTS


class FlowModule(L.LightningModule):
    """Trains ``model`` on batches ``(uint8 images [B, C, H, W], labels [B])``.

    The loss is the bits per dimension of the dequantised batch (``train/bpd``, ``val/bpd``).
    ``optimizer`` is a partial optimiser (Hydra ``_partial_: true``) completed with the
    parameters; the learning rate warms up linearly over ``warmup_steps`` optimiser steps.
    ActNorm layers initialise from the first training batch, before the first optimiser step.

    A class-conditional model (``model.num_classes > 0``) gets the labels as ``cond``; with
    ``classifier_weight > 0`` its class head adds ``classifier_weight * cross-entropy`` to the
    loss (the Glow paper's generative + discriminative objective).

    ``val_noise_seed``: ``None`` (default) dequantises validation batches with fresh noise like
    training batches. An int makes validation deterministic: every validation image gets the same
    noise pattern ``u [C, H, W]``, drawn once from this seed. Each image's bpd is still a one-draw
    estimate of its bound (``u`` is uniform), so the mean stays unbiased; and ``val/bpd`` no
    longer depends on the run, the batch size or how a ``DistributedSampler`` split the images, so
    a DDP run's value equals the single-process one and checkpoints compare without noise.

    Speed options (results unchanged): ``channels_last`` feeds images in NHWC, the layout oneDNN
    and tensor cores run fastest, and every convolution then keeps it (the weights stay as they
    are: DDP's gradient buckets expect the parameters' own layout); ``compile`` runs the model
    through ``torch.compile`` (in place, so checkpoint keys do not change).
    """

    def __init__(self, model: MultiScaleFlow,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 n_bits: int = 8, warmup_steps: int = 0, classifier_weight: float = 0.0,
                 val_noise_seed: int | None = None, channels_last: bool = False,
                 compile: bool = False, training_record: dict | None = None):
        super().__init__()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model
        if compile:
            self.model.compile()
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.n_bits = n_bits
        self.warmup_steps = warmup_steps
        self.conditional = getattr(model, "num_classes", 0) > 0
        self.classifier_weight = classifier_weight if self.conditional else 0.0
        self.val_noise_seed = val_noise_seed
        self._val_noise: Tensor | None = None
        # plain data saved with every checkpoint (the optimiser's config), compared on resume
        self.training_record = dict(training_record or {})

    def bpd(self, pixels: Tensor, labels: Tensor | None = None,
            generator: torch.Generator | None = None) -> Tensor:
        """Bits per dimension ``[B]`` of uint8 images, with fresh dequantisation noise."""
        return self._bpd_and_logits(pixels, labels, generator)[0]

    def _bpd_and_logits(self, pixels: Tensor, labels: Tensor | None,
                        generator: torch.Generator | None = None, fixed_noise: bool = False
                        ) -> tuple[Tensor, Tensor | None]:
        if fixed_noise and self.val_noise_seed is not None:
            # Bin centre (q + 0.5) / 2^n - 0.5, moved by the fixed (u - 0.5) / 2^n.
            x = preprocess(pixels, self.n_bits, noise=False)
            x = x + (self.fixed_val_noise(x) - 0.5) / 2**self.n_bits
        else:
            x = preprocess(pixels, self.n_bits, generator=generator)
        x = x.contiguous(memory_format=self.memory_format)
        cond = labels if self.conditional else None
        if self.classifier_weight > 0:
            zs, logdet, top = self.model.forward_features(x, cond)
            log_p, logits = self.model.latent_log_prob(zs) + logdet, self.model.class_logits(top)
        else:
            log_p, logits = self.model.log_prob(x, cond), None
        return bits_per_dim(log_p, self.model.num_dims, self.n_bits), logits

    def fixed_val_noise(self, x: Tensor) -> Tensor:
        """The ``val_noise_seed`` noise ``[C, H, W]`` for batches like ``x``: drawn on the CPU, so
        every rank and device gets the same values."""
        noise = self._val_noise
        if noise is None or noise.shape != x.shape[1:] or noise.device != x.device:
            generator = torch.Generator().manual_seed(self.val_noise_seed)
            noise = torch.rand(x.shape[1:], generator=generator, dtype=x.dtype).to(x.device)
            self._val_noise = noise
        return noise

    def _step(self, batch, stage: str) -> Tensor:
        pixels, labels = batch[0], batch[1]
        bpd, logits = self._bpd_and_logits(pixels, labels, fixed_noise=stage != "train")
        n = bpd.shape[0]
        # batch_size weights the epoch mean, so uneven last batches average exactly.
        self.log(f"{stage}/bpd", bpd.mean(), prog_bar=True, sync_dist=stage != "train",
                 batch_size=n)
        loss = bpd.mean()
        if logits is not None:
            class_loss = torch.nn.functional.cross_entropy(logits, labels)
            accuracy = (logits.argmax(1) == labels).float().mean()
            self.log(f"{stage}/class_loss", class_loss, sync_dist=stage != "train", batch_size=n)
            self.log(f"{stage}/accuracy", accuracy, sync_dist=stage != "train", batch_size=n)
            loss = loss + self.classifier_weight * class_loss
        return loss

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

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

    @torch.no_grad()
    def interpolation_images(self, steps: int, temperature: float = 0.7,
                             generator: torch.Generator | None = None) -> Tensor:
        """``steps`` images ``[steps, C, H, W]`` in ``[0, 1]`` decoded along the straight line
        between two latents drawn at ``temperature`` (every level)."""
        from flowgen.latent_paths import interpolate_latents

        was_training = self.model.training
        self.model.eval()
        try:
            a, b = (self.model.sample_latents(1, temperature, generator) for _ in range(2))
            zs = interpolate_latents(a, b, steps, method="linear")
            return postprocess(self.model.decode(zs), self.n_bits)
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
        checkpoint["flowgen"] = {**model_metadata(self.model, self.n_bits),
                                 "training": self.training_record}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # An EMA checkpoint's "state_dict" holds the averaged weights, and the EMA callback puts
        # the trained ones back on resume; resumed without it, go on from the trained ones too.
        trainer = self._trainer
        if (TRAINED_WEIGHTS in checkpoint and trainer is not None
                and trainer.state.fn == TrainerFn.FITTING
                and not any(isinstance(c, WeightAveraging) for c in trainer.callbacks)):
            checkpoint["state_dict"] = checkpoint[TRAINED_WEIGHTS]
