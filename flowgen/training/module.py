"""The LightningModule: a flow trained on one objective (bits/dim for images, NLL for vectors)."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn

from flowgen.flows import set_memory
from flowgen.models import model_metadata
from flowgen.models.checkpoint import TRAINED_WEIGHTS, checkpoint_format
from flowgen.models.upgrade import upgrade_weights
from flowgen.objectives import ImageDensity, Objective, UniformDequantizer, postprocess


class FlowModule(L.LightningModule):
    """Trains ``model`` on ``objective`` (see :mod:`flowgen.objectives`): the batch's loss is the
    objective's per-sample metric averaged, plus its weighted terms; the metric is logged as
    ``train/<metric>``, ``val/<metric>`` (``bpd``, ``nll``) and every term as ``<stage>/<name>``.

    Without ``objective``: bits/dim of uint8 image batches ``(images [B, C, H, W], labels [B])``
    at ``n_bits``, uniformly dequantised, with ``classifier_weight`` on a class-conditional
    model's class head (the Glow paper's generative + discriminative objective). A
    class-conditional model (``model.num_classes > 0``) gets the labels as ``cond``.

    ``optimizer`` is a partial optimiser (Hydra ``_partial_: true``) completed with the
    parameters; the learning rate warms up linearly over ``warmup_steps`` optimiser steps.
    ActNorm layers initialise from the first training batch, before the first optimiser step.
    ``memory`` (``store``, ``checkpoint``, ``invertible``; None keeps the model's own) is what
    training keeps for backward: see :func:`flowgen.flows.set_memory`.

    ``val_noise_seed``: ``None`` (default) draws fresh noise for validation batches like for
    training batches. An int makes validation deterministic: every validation image gets the same
    dequantisation noise pattern ``u [C, H, W]``, drawn once from this seed. Each image's bpd is
    still a one-draw estimate of its bound (``u`` is uniform), so the mean stays unbiased; and
    ``val/bpd`` no longer depends on the run, the batch size or how a ``DistributedSampler`` split
    the images, so a DDP run's value equals the single-process one.

    Speed options (results unchanged): ``channels_last`` feeds 4-D image batches in NHWC, the
    layout oneDNN and tensor cores run fastest (the dequantisation keeps it, and every
    convolution then; the weights stay as they are: DDP's gradient buckets expect the parameters'
    own layout); ``compile`` runs the model through ``torch.compile`` (in place, so checkpoint
    keys do not change).
    """

    def __init__(self, model: nn.Module,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 objective: Objective | None = None,
                 n_bits: int = 8, warmup_steps: int = 0, classifier_weight: float = 0.0,
                 val_noise_seed: int | None = None, channels_last: bool = False,
                 compile: bool = False, memory: str | None = None,
                 training_record: dict | None = None):
        super().__init__()
        if objective is None:
            objective = ImageDensity(n_bits, UniformDequantizer(), classifier_weight)
        elif (n_bits, classifier_weight) != (8, 0.0):
            raise ValueError("n_bits and classifier_weight build the default objective: give "
                             "them to the objective passed instead")
        self.model = model
        if memory is not None:  # before compiling: the mode is read when the graph is traced
            set_memory(self.model, memory)
        if compile:
            self.model.compile()
        self.objective = objective
        # None where the objective has no pixels (vectors): nothing to quantise for display
        self.n_bits: int | None = getattr(objective, "n_bits", None)
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.warmup_steps = warmup_steps
        self.val_noise_seed = val_noise_seed
        self.channels_last = channels_last
        # plain data saved with every checkpoint (the optimiser's config), compared on resume
        self.training_record = dict(training_record or {})

    def bpd(self, pixels: Tensor, labels: Tensor | None = None,
            generator: torch.Generator | None = None) -> Tensor:
        """The objective's per-sample metric ``[B]`` (bits/dim of uint8 images by default), with
        fresh noise."""
        return self.objective(self.model, (pixels, labels), generator=generator).values

    def _step(self, batch, stage: str) -> Tensor:
        data = batch[0]
        if self.channels_last and data.dim() == 4:
            batch = (data.contiguous(memory_format=torch.channels_last), *batch[1:])
        result = self.objective(self.model, batch,
                                noise_seed=None if stage == "train" else self.val_noise_seed)
        n, sync = result.values.shape[0], stage != "train"
        # batch_size weights the epoch mean, so uneven last batches average exactly.
        self.log(f"{stage}/{result.metric}", result.values.mean(), prog_bar=True, sync_dist=sync,
                 batch_size=n)
        for name, term in result.terms.items():
            self.log(f"{stage}/{name}", term.value, sync_dist=sync, batch_size=n)
        return result.loss()

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    @torch.no_grad()
    def sample_images(self, n: int, temperature: float = 0.7,
                      generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples as images in ``[0, 1]``, ``[n, C, H, W]``."""
        was_training = self.model.training
        self.model.eval()
        try:
            return postprocess(self.model.sample(n, temperature=temperature, generator=generator),
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
        meta = model_metadata(self.model, 8 if self.n_bits is None else self.n_bits)
        if self.n_bits is None:
            meta["n_bits"] = None  # vector data: no bit depth
        checkpoint["flowgen"] = {**meta, "training": self.training_record}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # A checkpoint of an older format resumes with its weights under today's names.
        fmt = checkpoint_format(checkpoint.get("flowgen") or {})
        for key in ("state_dict", TRAINED_WEIGHTS):
            if key in checkpoint:
                checkpoint[key] = upgrade_weights(checkpoint[key], fmt, "model.")
        # An EMA checkpoint's "state_dict" holds the averaged weights, and the EMA callback puts
        # the trained ones back on resume; resumed without it, go on from the trained ones too.
        trainer = self._trainer
        if (TRAINED_WEIGHTS in checkpoint and trainer is not None
                and trainer.state.fn == TrainerFn.FITTING
                and not any(isinstance(c, WeightAveraging) for c in trainer.callbacks)):
            checkpoint["state_dict"] = checkpoint[TRAINED_WEIGHTS]
