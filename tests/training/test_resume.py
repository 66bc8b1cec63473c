"""Exact resume through the real CLI: a ``train.py`` run killed with SIGKILL, or stopped with
SIGTERM, at a random step and resumed with ``ckpt_path=last`` ends with the same weights and
optimiser state, tensor for tensor, as a run that was never interrupted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from flowgen.data.base import ResumableLoader, SeededRandomSampler
from tests.conftest import ROOT

# 64 training images in batches of 8: 8 steps per epoch, so resumes land mid-epoch, and the
# runs cross epochs, validations (every 10 steps) and periodic checkpoints (every 4).
STEPS, EVERY = 30, 4


class StepBeacon(L.Callback):
    """Loaded by ``train.py`` in these tests: after each training step, writes the global step to
    ``path`` and sleeps ``delay`` seconds, so that the test can signal the run mid-way."""

    def __init__(self, path: str, delay: float):
        self.path, self.delay = Path(path), delay

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(trainer.global_step))
        os.replace(tmp, self.path)
        time.sleep(self.delay)


def _step(beacon: Path) -> int:
    return int(beacon.read_text()) if beacon.exists() else 0


def test_a_loader_restored_mid_epoch_serves_the_rest_of_that_epoch_then_the_next():
    dataset = torch.utils.data.TensorDataset(torch.arange(20))
    loader = lambda: ResumableLoader(dataset, batch_size=3, drop_last=True,  # noqa: E731
                                     sampler=SeededRandomSampler(dataset, seed=7))
    original = loader()
    epochs = []
    for epoch in range(3):
        original.sampler.set_epoch(epoch)  # as Lightning does before every epoch
        epochs.append([batch[0].tolist() for batch in original])
    assert epochs[0] != epochs[1] != epochs[2]  # a new order every epoch

    for seen in range(len(original) + 1):  # every place in epoch 1, its end included
        interrupted = loader()
        interrupted.sampler.set_epoch(1)
        batches = iter(interrupted)
        for _ in range(seen):
            next(batches)
        resumed = loader()
        resumed.load_state_dict(interrupted.state_dict())
        rest = []
        # after the epoch's last batch Lightning's next epoch is 2, and it would call set_epoch(2)
        for epoch in (1, 2) if seen < len(original) else (2,):
            resumed.sampler.set_epoch(epoch)
            rest += [batch[0].tolist() for batch in resumed]
        assert rest == epochs[1][seen:] + epochs[2], f"resumed after {seen} batches"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    x = np.random.default_rng(0).integers(0, 256, (72, 8, 8), dtype=np.uint8)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=x[:64], x_test=x[64:])
    return path


def _start(data: Path, run: Path, *overrides: str, delay: float = 0.0,
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """``train.py`` on a tiny Glow, deterministic on the CPU, writing under ``run``: checkpoints in
    ``run/ckpt``, the step reached in ``run/step``."""
    n_out = len(list(run.glob("out*")))  # each process its own Hydra folder
    args = [sys.executable, "train.py", "data=npz", f"data.path={data}", "data.batch_size=8",
            "data.hflip=true",  # flips draw from the global RNG too
            "model.levels=2", "model.steps=1", "model.hidden_channels=8",
            "trainer=cpu", "trainer.deterministic=true", f"trainer.max_steps={STEPS}",
            "trainer.val_check_interval=10", "trainer.limit_val_batches=1",
            "trainer.enable_progress_bar=false", "logger=csv", "callbacks.sample_grid.n=4",
            f"callbacks.last_checkpoint.every_n_train_steps={EVERY}", f"run_name={run.name}",
            f"paths.checkpoint_dir={run / 'ckpt'}", f"hydra.run.dir={run / f'out{n_out}'}",
            f"+callbacks.beacon._target_={__name__}.StepBeacon", f"+callbacks.beacon.delay={delay}",
            f"+callbacks.beacon.path={run / 'step'}", *overrides]
    env = {**os.environ, "WANDB_MODE": "disabled", **(env or {})}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _fail(proc: subprocess.Popen, message: str) -> None:
    """Kill ``proc`` (a failed test leaves no training behind) and fail with its output."""
    proc.kill()
    out, _ = proc.communicate(timeout=60)
    pytest.fail(f"{message}; train.py said:\n{out[-3000:]}")


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _fail(proc, f"train.py did not finish within {timeout} s")
    assert proc.returncode == 0, out[-3000:]
    return out


def _wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            _fail(proc, f"train.py ended before {what}")
        if time.monotonic() > deadline:
            _fail(proc, f"no {what} within {timeout} s")
        time.sleep(0.02)


def _trained_state(ckpt: Path) -> dict[str, torch.Tensor]:
    """Every tensor a run ends with: the weights and buffers (with EMA: the averaged and the
    trained ones), and the optimiser's moments."""
    saved = torch.load(ckpt, weights_only=True)
    assert saved["global_step"] == STEPS
    state = {f"model/{k}": v for k, v in saved["state_dict"].items()}
    state |= {f"trained/{k}": v for k, v in saved.get("current_model_state", {}).items()}
    for i, opt in enumerate(saved["optimizer_states"]):
        for p, moments in opt["state"].items():
            state |= {f"optimizer{i}/{p}/{k}": v for k, v in moments.items()}
    return state


def _assert_same(resumed: dict, reference: dict, note: str) -> None:
    assert resumed.keys() == reference.keys()
    differ = [k for k in reference if not torch.equal(resumed[k], reference[k])]
    assert not differ, f"{note}: {len(differ)}/{len(reference)} tensors differ: {differ[:3]}"


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> dict[str, torch.Tensor]:
    run = tmp_path_factory.mktemp("uninterrupted")
    _finish(_start(data, run))
    return _trained_state(run / "ckpt" / "last.ckpt")


def test_a_run_killed_by_sigkill_and_resumed_ends_with_the_uninterrupted_weights(
        data, tmp_path, uninterrupted):
    run = tmp_path / "killed"
    kill_at = random.randint(EVERY + 1, STEPS - 5)  # mostly between two checkpoints
    proc = _start(data, run, delay=0.05)
    last = run / "ckpt" / "last.ckpt"
    _wait_for(proc, lambda: last.exists() and _step(run / "step") >= kill_at, f"step {kill_at}")
    proc.kill()  # SIGKILL: no handler runs, nothing is saved
    proc.communicate(timeout=60)
    killed_at = _step(run / "step")
    resumed_from = torch.load(last, weights_only=True)["global_step"]
    assert 0 < resumed_from <= killed_at < STEPS

    out = _finish(_start(data, run, "ckpt_path=last"))
    assert f"finished after {STEPS} steps" in out
    _assert_same(_trained_state(last), uninterrupted,
                 f"killed at step {killed_at}, resumed from step {resumed_from}")


def test_sigterm_saves_the_step_reached_exits_0_and_the_run_resumes_to_the_end(
        data, tmp_path, uninterrupted):
    run = tmp_path / "terminated"
    stop_at = random.randint(2, STEPS - 5)
    # No periodic checkpoint: whatever is saved, SIGTERM saved.
    rare = f"callbacks.last_checkpoint.every_n_train_steps={10 * STEPS}"
    proc = _start(data, run, rare, delay=0.05)
    _wait_for(proc, lambda: _step(run / "step") >= stop_at, f"step {stop_at}")
    proc.send_signal(signal.SIGTERM)
    out = _finish(proc)  # exit code 0
    reached = _step(run / "step")
    assert f"stopped by SIGTERM at step {reached}" in out
    last = run / "ckpt" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == reached < STEPS

    out = _finish(_start(data, run, rare, "ckpt_path=last"))
    assert f"finished after {STEPS} steps" in out
    _assert_same(_trained_state(last), uninterrupted, f"stopped by SIGTERM at step {reached}")


def test_slurm_auto_requeue_stops_the_run_at_a_resumable_step(data, tmp_path):
    # SLURM as Lightning sees it from one srun task, and an scontrol that, like SLURM on a
    # requeue, stops the job with SIGTERM.
    run, bin_dir = tmp_path / "slurm", tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    log = tmp_path / "scontrol.log"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {log}\nkill -TERM "$PPID"\n')
    scontrol.chmod(0o755)
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "flowgen", "SLURM_JOB_ID": "4242",
             "SLURM_NODELIST": "localhost", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
             "SLURM_NODEID": "0", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = _start(data, run, f"callbacks.last_checkpoint.every_n_train_steps={10 * STEPS}",
                  delay=0.05, env=slurm)
    _wait_for(proc, lambda: _step(run / "step") >= 3, "step 3")
    proc.send_signal(signal.SIGUSR1)  # what --signal=SIGUSR1@120 sends before the time limit
    out = _finish(proc)
    assert "SLURM auto-requeueing enabled" in out
    assert log.read_text().split() == ["requeue", "4242"]
    reached = _step(run / "step")
    assert f"stopped by SIGTERM at step {reached}" in out
    assert torch.load(run / "ckpt" / "last.ckpt", weights_only=True)["global_step"] == reached
    # The requeued job: the same command (no ckpt_path) with SLURM_RESTART_COUNT set continues
    # the run from last.ckpt instead of refusing its folder.
    out = _finish(_start(data, run, f"callbacks.last_checkpoint.every_n_train_steps={10 * STEPS}",
                         env={**slurm, "SLURM_RESTART_COUNT": "1"}))
    assert f"finished after {STEPS} steps" in out and "Restoring states from" in out


def test_a_format_1_checkpoint_resumes_with_model_memory_in_its_record(tmp_path):
    """A last.ckpt written before the engine of issue 12 (its record has in_channels, image_size
    and model.memory; its weights the old names) resumes with today's config and code."""
    import shutil

    from flowgen.training import train
    from tests.conftest import compose_train

    old = ROOT / "tests" / "fixtures" / "format1" / "glow.ckpt"
    assert torch.load(old, weights_only=True)["flowgen"]["config"]["memory"] == "store"
    shutil.copy(old, tmp_path / "old.ckpt")
    metrics = train(compose_train(
        ["model.levels=2", "model.steps=2", "model.hidden_channels=8", "data.batch_size=4",
         "optim.warmup_steps=100", "trainer.limit_val_batches=1", "callbacks.sample_grid.n=4",
         f"ckpt_path={tmp_path / 'old.ckpt'}"], tmp_path, shrink_model=False))
    assert metrics["step"] == 4 and np.isfinite(metrics["val/bpd"])  # 2 steps on from step 2
