"""One run, one record: a run stopped by SIGTERM and resumed with ``ckpt_path=last`` has one
W&B run id, one ``metrics.csv`` holding both parts, and both command lines in its record."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flowgen.training.loggers import ResumableCSVLogger, wandb_run_id
from tests.conftest import ROOT


def test_the_wandb_run_id_is_derived_from_run_name_alone():
    assert wandb_run_id("glow-mnist") == wandb_run_id("glow-mnist")
    assert re.fullmatch(r"glow-mnist-[0-9a-f]{8}", wandb_run_id("glow-mnist"))
    for name in ("Glow MNIST=3.5", "x" * 200, "___", "2026-11-30_23-50-01-3"):
        assert re.fullmatch(r"[a-z0-9_-]{1,64}", wandb_run_id(name)), name
    assert wandb_run_id("Run A") != wandb_run_id("run-a")  # same letters, another run


def test_a_second_csv_logger_of_the_run_appends_to_its_metrics_file(tmp_path):
    first = ResumableCSVLogger(tmp_path)
    first.log_metrics({"train/loss": 1.0}, step=0)
    first.save()
    second = ResumableCSVLogger(tmp_path)  # a resume: a new process, the same folder
    second.log_metrics({"train/loss": 0.5, "val/bpd": 2.0}, step=1)  # a new column too
    second.save()
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").read_text().splitlines()))
    assert [(r["step"], r["train/loss"], r["val/bpd"]) for r in rows] == [
        ("0", "1.0", ""), ("1", "0.5", "2.0")]
    assert [p.name for p in tmp_path.iterdir()] == ["csv"]  # no version_<n>/


def _start(data: Path, run: Path, *extra: str) -> subprocess.Popen:
    """A tiny run logging to W&B (offline) and CSV; ``run/step`` holds the step reached."""
    args = [sys.executable, "train.py", "data=npz", f"data.path={data}", "data.batch_size=4",
            "data.num_workers=0", "model.levels=1", "model.steps=1", "model.hidden_channels=4",
            "trainer=cpu", "trainer.max_steps=8", "trainer.val_check_interval=4",
            "trainer.limit_val_batches=1", "trainer.log_every_n_steps=1",
            "trainer.enable_progress_bar=false", "logger=[wandb,csv]",
            "callbacks.sample_grid.n=4", "run_name=one-record", f"hydra.run.dir={run / 'out'}",
            f"paths.checkpoint_dir={run / 'ckpt'}",
            "+callbacks.beacon._target_=tests.training.test_resume.StepBeacon",
            "+callbacks.beacon.delay=0.3", f"+callbacks.beacon.path={run / 'step'}", *extra]
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1",
           "WANDB_DIR": str(run / "out"), "WANDB_CACHE_DIR": str(run / "wandb-cache"),
           "WANDB_CONFIG_DIR": str(run / "wandb-config")}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"train.py did not finish:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    return out


def test_a_resumed_run_keeps_one_wandb_run_one_csv_and_both_commands(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "tiny.npz", x_train=x[:32], x_test=x[32:])
    run = tmp_path / "run"
    proc = _start(tmp_path / "tiny.npz", run)
    deadline = time.monotonic() + 180
    while not ((run / "step").exists() and int((run / "step").read_text()) >= 2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no step 2:\n{proc.communicate()[0][-3000:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out = _finish(proc)
    stopped = int(re.search(r"stopped by SIGTERM at step (\d+)", out).group(1))
    assert 2 <= stopped < 8
    _finish(_start(tmp_path / "tiny.npz", run, "ckpt_path=last"))

    out_dir = run / "out"
    runs = sorted((out_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs  # one folder per command ...
    # offline-run-<date>_<time>-<run id>: both of the one id run_name gives
    assert all(p.name.endswith("-" + wandb_run_id("one-record")) for p in runs), runs

    assert [p.name for p in out_dir.glob("csv/*/")] == []  # no version_<n>/
    rows = list(csv.DictReader((out_dir / "csv" / "metrics.csv").read_text().splitlines()))
    steps = {int(r["step"]) for r in rows if r.get("train/bpd")}
    assert min(steps) < stopped <= max(steps) and max(steps) >= 6, sorted(steps)

    record = out_dir / ".hydra"
    assert "ckpt_path=last" not in (record / "overrides.yaml").read_text()
    assert "ckpt_path=last" in (record / "resume-1" / "overrides.yaml").read_text()


def test_the_slurm_launcher_requeues_on_the_signal_it_asks_for():
    """submitit asks sbatch for USR2 before the time limit and requeues on it; Lightning's own
    requeue listens on another signal (else the job would be requeued twice)."""
    import signal as signals

    from hydra import compose, initialize_config_dir
    from lightning.fabric.plugins.environments import SLURMEnvironment
    from submitit.slurm.slurm import SlurmJobEnvironment

    from flowgen.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", ["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s >= 60
    assert SlurmJobEnvironment.USR_SIG == "USR2"
    assert SLURMEnvironment().requeue_signal != signals.SIGUSR2
