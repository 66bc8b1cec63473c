"""A run's folders belong to that run: one run per checkpoint folder, a lock that a dead process
does not hold, temporaries of killed writes removed, the record appended, and the best
checkpoint known to a resumed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from flowgen.errors import FlowgenError
from flowgen.training import train
from flowgen.training.run_dir import LOCK_NAME, claim_run
from tests.conftest import ROOT, compose_train

STEPS = ["trainer.max_steps=2", "trainer.val_check_interval=2", "callbacks.sample_grid.n=4"]


def test_start_over_moves_the_earlier_checkpoints_aside(tmp_path):
    train(compose_train(STEPS, tmp_path))
    earlier = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").glob("*.ckpt")}
    with pytest.raises(FlowgenError, match="already holds a run"):
        train(compose_train(STEPS, tmp_path))
    train(compose_train([*STEPS, "start_over=true"], tmp_path))
    aside = [p for p in (tmp_path / "ckpt").iterdir() if p.name.startswith("previous-")]
    assert len(aside) == 1
    assert {p.name: p.read_bytes() for p in aside[0].iterdir()} == earlier  # nothing lost
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()


def test_a_killed_run_does_not_keep_its_lock(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
         str(folder / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = compose_train([], tmp_path)
        with pytest.raises(FlowgenError, match="is already running"):
            with claim_run(cfg, None):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        with claim_run(cfg, None):  # the kernel released the dead process's lock
            pass
    finally:
        holder.kill()
        holder.communicate(timeout=60)  # reaps it and closes its pipe


def test_stale_temporaries_of_killed_writes_are_removed_on_resume(tmp_path):
    train(compose_train(STEPS, tmp_path))
    stale = tmp_path / "ckpt" / f".last.ckpt.tmp-{os.getpid() + 1}"
    stale.write_bytes(b"half a checkpoint")
    keep = tmp_path / "ckpt" / "notes.tmp-1"  # not a temporary of ours: left alone
    keep.write_text("mine")
    train(compose_train(["trainer.max_steps=3", "trainer.val_check_interval=2",
                         "callbacks.sample_grid.n=4",
                         f"ckpt_path={tmp_path / 'ckpt' / 'last.ckpt'}"], tmp_path))
    assert not stale.exists() and keep.read_text() == "mine"


def test_a_resumed_run_knows_the_best_checkpoint_of_the_step_it_resumed_from(tmp_path):
    """last.ckpt at a validation step records that validation's best, so the resumed run
    replaces it (save_top_k=1) instead of leaving it beside the new best."""
    train(compose_train(["trainer.max_steps=2", "trainer.val_check_interval=2",
                         "callbacks.last_checkpoint.every_n_train_steps=2",
                         "callbacks.sample_grid.n=4"], tmp_path))
    best = sorted((tmp_path / "ckpt").glob("best-*.ckpt"))
    assert [p.name for p in best] == [best[0].name] and "step2" in best[0].name
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["callbacks"]
    recorded = [s["best_model_path"] for k, s in state.items() if k.startswith("ModelCheckpoint")]
    assert recorded == [str(best[0])]
    train(compose_train(["trainer.max_steps=8", "trainer.val_check_interval=2",
                         "callbacks.last_checkpoint.every_n_train_steps=2",
                         "callbacks.sample_grid.n=4",
                         f"ckpt_path={tmp_path / 'ckpt' / 'last.ckpt'}"], tmp_path))
    best_after = sorted((tmp_path / "ckpt").glob("best-*.ckpt"))
    assert len(best_after) == 1 and best_after != best  # replaced, not orphaned


def test_each_command_is_appended_to_the_record(tmp_path):
    """Through the real CLI: the resume's record goes to .hydra/resume-1/, the first stays."""
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    common = ["model.steps=1", "model.hidden_channels=4", "data.batch_size=4", "logger=csv",
              "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
              "callbacks.sample_grid.n=4", f"hydra.run.dir={tmp_path / 'out'}",
              f"paths.checkpoint_dir={tmp_path / 'ckpt'}"]
    record = tmp_path / "out" / ".hydra"
    for extra in (["trainer.max_steps=2"], ["trainer.max_steps=3", "ckpt_path=last"]):
        out = subprocess.run([sys.executable, str(ROOT / "train.py"), *common, *extra],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        if len(extra) == 1:
            first = (record / "overrides.yaml").read_bytes()
    assert (record / "overrides.yaml").read_bytes() == first
    assert "ckpt_path=last" in (record / "resume-1" / "overrides.yaml").read_text()
    log = (tmp_path / "out" / "train.log").read_text()
    assert log.count("global batch") == 2  # both commands logged to one file


def test_a_requeued_slurm_job_resumes_from_last(tmp_path):
    from flowgen.training.resume_checks import resolve_ckpt_path

    assert resolve_ckpt_path(None, tmp_path, {}) is None
    assert resolve_ckpt_path(None, tmp_path, {"SLURM_RESTART_COUNT": "0"}) is None
    # requeued before the first last.ckpt: a fresh start, as ckpt_path=last gives
    assert resolve_ckpt_path(None, tmp_path, {"SLURM_RESTART_COUNT": "2"}) is None
    (tmp_path / "last.ckpt").write_bytes(b"")
    assert resolve_ckpt_path(None, tmp_path, {"SLURM_RESTART_COUNT": "2"}) == \
        (tmp_path / "last.ckpt").absolute()
    other = tmp_path / "other.ckpt"
    assert resolve_ckpt_path(str(other), tmp_path, {"SLURM_RESTART_COUNT": "1"}) == other


def test_the_default_run_name_survives_a_submitit_requeue():
    """Under the submitit launcher a requeued job re-composes its config from the pickled sweep
    config, copying its resolver cache (hydra's load_sweep_config): the default run_name, the
    same ``now`` pattern as the sweep folder, is the submitting time in every requeue."""
    import pickle
    import time

    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf

    from flowgen.config import CONFIG_DIR

    setup_globals()  # hydra's resolvers: now (cached)
    import yaml

    sweep_dir = yaml.safe_load((CONFIG_DIR / "hydra" / "default.yaml").read_text())["sweep"]["dir"]
    run_name = yaml.safe_load((CONFIG_DIR / "train.yaml").read_text())["run_name"]
    pattern = sweep_dir[sweep_dir.index("${now:"):].split("}")[0]
    assert run_name.startswith(pattern), (run_name, sweep_dir)  # one cache entry for both
    master = OmegaConf.create({"sweep": "${now:%Y-%m-%d_%H-%M-%S-%f}"})
    submitted = master.sweep  # the launcher reads the sweep folder before submitting
    time.sleep(0.01)
    for _ in range(2):  # the first job, then a requeue of it
        job = OmegaConf.create({"run_name": "${now:%Y-%m-%d_%H-%M-%S-%f}"})
        OmegaConf.copy_cache(from_config=pickle.loads(pickle.dumps(master)), to_config=job)
        assert job.run_name == submitted
