"""The DensityPanel callback on a stand-in vector model (a learnable-shift standard normal):
it draws after validation, saves the picture, logs its counts, and sends it to W&B."""

from __future__ import annotations

import math
from types import SimpleNamespace

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from PIL import Image
from torch import nn

from flowgen.data.vectors import ToyDataModule
from flowgen.plots import GAP, TITLE_HEIGHT
from flowgen.training.density_panel import DensityPanel


class ShiftedNormal(nn.Module):
    """N(shift, I) on R^2 with the model API the callback uses; ``nan_right`` makes the
    log-density NaN where x > 0, as an overflowing flow would."""

    def __init__(self, nan_right: bool = False) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(2))
        self.nan_right = nan_right

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        log_p = -0.5 * (x - self.shift).square().sum(1) - math.log(2 * math.pi)
        return log_p.masked_fill(x[:, 0] > 0, math.nan) if self.nan_right else log_p

    def sample(self, n, temperature=1.0, cond=None, generator=None):
        z = torch.randn(n, 2, generator=generator, device=self.shift.device)
        return self.shift + temperature * z


class Module(L.LightningModule):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch, _):
        return -self.model.log_prob(batch[0]).mean()

    def validation_step(self, batch, _):
        self.log("val/nll", -self.model.log_prob(batch[0]).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path, model, every=1):
    dm = ToyDataModule("two_moons", n_train=256, n_val=64, n_test=64, batch_size=64)
    callback = DensityPanel(str(tmp_path / "pictures"), n_samples=500, resolution=32,
                            every_n_validations=every)
    trainer = L.Trainer(max_steps=8, val_check_interval=2, limit_val_batches=1,
                        accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[callback], num_sanity_val_steps=1)
    trainer.fit(Module(model), datamodule=dm)
    return trainer


def test_callback_writes_a_picture_after_each_validation(tmp_path):
    trainer = fit(tmp_path, ShiftedNormal())
    names = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert names == [f"density-step{s:06d}.png" for s in (2, 4, 6, 8)]  # none at the sanity check
    with Image.open(tmp_path / "pictures" / names[-1]) as image:
        assert image.size == (3 * 32 + 2 * GAP, TITLE_HEIGHT + 32)
    assert trainer.callback_metrics["val/nonfinite_density"] == 0
    assert trainer.callback_metrics["val/nonfinite_samples"] == 0


def test_callback_counts_nonfinite_density_and_keeps_every_nth(tmp_path):
    trainer = fit(tmp_path, ShiftedNormal(nan_right=True), every=3)
    names = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert names == ["density-step000002.png", "density-step000008.png"]
    bad = trainer.callback_metrics["val/nonfinite_density"].item()
    assert 0 < bad < 32 * 32 and trainer.model.model.training  # train mode restored


def test_callback_logs_the_picture_to_wandb():
    class Recorder(WandbLogger):
        def __init__(self):  # no run: only the call is recorded
            self.calls = []

        def log_image(self, key, images, step=None, **kwargs):
            self.calls.append((key, images, step))

    recorder = Recorder()
    dm = ToyDataModule("eight_gaussians", n_train=512, n_val=8, n_test=8)
    trainer = SimpleNamespace(datamodule=dm, global_step=7, loggers=[recorder])
    module = SimpleNamespace(model=ShiftedNormal(), device=torch.device("cpu"))
    nonfinite, bad_samples = DensityPanel(n_samples=100, resolution=16)._draw(trainer, module)
    assert (nonfinite, bad_samples) == (0, 0.0)
    [(key, [image], step)] = recorder.calls
    assert key == "val/density" and step == 7 and isinstance(image, Image.Image)
