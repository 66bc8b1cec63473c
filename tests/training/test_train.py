"""The training app end to end on the embedded data, through the real configs."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import lightning as L
import pytest
import torch

from flowgen.flows import ActNorm
from flowgen.models import Glow, load_model
from flowgen.training import FlowModule, train
from tests.conftest import ROOT, compose_train


class AssertActNormReady(L.Callback):
    """Fails the run if an optimiser step could happen before ActNorm saw a real batch."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        for m in pl_module.modules():
            if isinstance(m, ActNorm):
                assert bool(m.initialized) and m.log_scale.abs().sum() > 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = compose_train([f"+callbacks.actnorm_check._target_={__name__}.AssertActNormReady"], tmp)
    return train(cfg), tmp


def test_training_logs_bpd_and_writes_checkpoints_and_samples(trained):
    metrics, tmp = trained
    assert metrics["step"] == 4
    assert 0 < metrics["val/bpd"] < 10 and 0 < metrics["train/bpd"] < 10
    assert (tmp / "ckpt" / "last.ckpt").is_file()
    assert metrics["best_checkpoint"].startswith(str(tmp / "ckpt" / "best-step"))
    assert sorted(p.name for p in (tmp / "out" / "samples").iterdir()) == \
        ["interp-step0000002.png", "interp-step0000004.png", "step0000002.png", "step0000004.png"]
    assert (tmp / "out" / "csv").is_dir()


def test_checkpoint_reloads_to_the_same_log_prob_without_reinitialising(trained):
    metrics, tmp = trained
    model, meta = load_model(tmp / "ckpt" / "last.ckpt")
    assert meta["arch"] == "glow" and meta["n_bits"] == 8
    ckpt = torch.load(tmp / "ckpt" / "last.ckpt", weights_only=True)
    reference = Glow(**meta["config"])
    reference.load_state_dict({k[6:]: v for k, v in ckpt["state_dict"].items()})
    x = torch.rand(4, 1, 32, 32) - 0.5
    model.train()  # training mode: a loaded ActNorm must still not re-initialise
    reference.eval()
    torch.testing.assert_close(model.log_prob(x), reference.log_prob(x), rtol=0, atol=0)
    assert all(bool(m.initialized) for m in model.modules() if isinstance(m, ActNorm))


def test_validation_bpd_is_the_mean_over_the_validation_set(trained, tmp_path):
    # Lightning's logged epoch value equals a hand-computed mean over the same images.
    metrics, tmp = trained
    model, _ = load_model(tmp / "ckpt" / "last.ckpt")
    module = FlowModule(model)
    cfg = compose_train(["trainer.limit_val_batches=3", "data.batch_size=7"], tmp_path)
    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    dm.setup()
    torch.manual_seed(123)
    trainer = L.Trainer(accelerator="cpu", logger=False, limit_val_batches=3,
                        enable_progress_bar=False, enable_model_summary=False)
    logged = trainer.validate(module, datamodule=dm, verbose=False)[0]["val/bpd"]
    torch.manual_seed(123)
    images = torch.cat([b[0] for _, b in zip(range(3), dm.val_dataloader(), strict=False)])
    with torch.no_grad():
        expected = torch.cat([module.bpd(images[i:i + 7]) for i in range(0, 21, 7)]).mean()
    assert abs(logged - expected.item()) < 1e-5


def test_warmup_raises_the_learning_rate_linearly():
    module = FlowModule(Glow((1, 4, 4), levels=1, steps=1, hidden_channels=4),
                        optimizer=lambda p: torch.optim.Adam(p, lr=1e-3), warmup_steps=4)
    config = module.configure_optimizers()
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_cli_sweep_runs_two_jobs_into_separate_checkpoint_folders(tmp_path):
    args = [sys.executable, "train.py", "-m", "model.hidden_channels=4,8", "model.steps=1",
            "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
            "trainer.accelerator=cpu", "data.batch_size=8", "logger=csv",
            "run_name=sweep${job_suffix:}",
            f"paths.checkpoint_dir={tmp_path}/ckpt/${{run_name}}",
            f"hydra.sweep.dir={tmp_path}/multirun", "callbacks.sample_grid.n=4"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["sweep-0", "sweep-1"]
    for job in ("sweep-0", "sweep-1"):
        assert (tmp_path / "ckpt" / job / "last.ckpt").is_file()
    assert out.stdout.count("finished after 2 steps") == 2


def test_wandb_logs_offline_with_sample_images(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    metrics = train(compose_train(["logger=wandb", "trainer.max_steps=2"], tmp_path))
    assert metrics["step"] == 2
    runs = list((tmp_path / "out" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].rglob("samples_*.png")), "the sample grid was not logged to W&B"
    assert list(runs[0].rglob("interpolation_*.png")), "the interpolation was not logged to W&B"


def test_bf16_mixed_and_invertible_memory_train_through_the_real_config(tmp_path):
    """The speed and memory options as users set them: bf16 autocast (flow kept in float32)
    with memory=invertible (a training option) trains to a finite bpd and a checkpoint that
    samples in float32."""
    from flowgen.models import load_model
    from flowgen.training import build

    cfg = compose_train(["trainer.precision=bf16-mixed", "memory=invertible",
                         "channels_last=true"], tmp_path)
    modes = {m.memory for m in build(cfg)[1].model.modules() if isinstance(
        getattr(m, "memory", None), str)}
    assert modes == {"invertible"}  # every sequence of the model trains with it
    metrics = train(cfg)
    assert metrics["step"] == 4 and math.isfinite(metrics["train/bpd"])
    model, _ = load_model(metrics["last_checkpoint"])
    assert torch.isfinite(model.sample(2, temperature=0.7)).all()
