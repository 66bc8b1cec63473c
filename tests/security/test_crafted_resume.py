"""A checkpoint someone else made must not make a resumed run delete (or write) anything outside
its own checkpoint folder: the paths its checkpoint callbacks' states name are confined."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowgen.training import train
from flowgen.training.confined import ConfinedCheckpoint
from tests.conftest import ROOT, compose_train

TINY = ["model.steps=1", "model.hidden_channels=4", "data.batch_size=4", "optim.warmup_steps=2"]


def _craft(source: Path, target: Path, best: str, last: str) -> Path:
    """``source`` with no ``dirpath`` in its checkpoint callbacks' states, the best callback's
    one top-k entry at ``best`` and the last-checkpoint callback's previous file at ``last``:
    what Lightning removes at the next best and the next last.ckpt."""
    ckpt = torch.load(source, weights_only=True)
    for key, state in ckpt["callbacks"].items():
        if "Checkpoint" in key:
            aim = last if key.startswith("ResumeCheckpoint") else best
            state.pop("dirpath", None)
            state.update(best_model_path=aim, kth_best_model_path=aim, last_model_path=aim,
                         best_k_models={aim: torch.tensor(9.0)},
                         best_model_score=torch.tensor(9.0), kth_value=torch.tensor(9.0))
    torch.save(ckpt, target)
    return target


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("trained")
    cfg = compose_train(["trainer.max_steps=2", "trainer.val_check_interval=2",
                         "callbacks.sample_grid.n=4", *TINY], tmp, shrink_model=False)
    return Path(train(cfg)["last_checkpoint"])


@pytest.mark.parametrize("best, last", [("{run}/../../victim", "{run}/../../victim/file.txt"),
                                        ("{run}/link-to-victim", "{run}/link-to-victim")])
def test_resuming_a_crafted_checkpoint_deletes_nothing_outside_the_run(trained, tmp_path,
                                                                        best, last):
    run = tmp_path / "runs" / "ckpt"  # the new run's checkpoint folder
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file.txt").write_text("precious")
    run.mkdir(parents=True)
    (run / "link-to-victim").symlink_to(victim)
    crafted = _craft(trained, tmp_path / "downloads.ckpt", best.format(run=run),
                     last.format(run=run))
    before = crafted.read_bytes()
    # a better val/bpd replaces the best and the end saves last.ckpt: each removes the path
    # the checkpoint named, unless it is confined
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *TINY, "logger=csv", "trainer.max_steps=6",
         "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
         "callbacks.sample_grid.n=4",
         f"ckpt_path={crafted}", f"paths.checkpoint_dir={run}",
         f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert (victim / "file.txt").read_text() == "precious"
    assert (run / "link-to-victim").is_symlink()
    assert crafted.read_bytes() == before
    assert "names files outside" in out.stdout + out.stderr  # said, not silently dropped


def test_only_files_directly_inside_the_folder_are_kept(tmp_path):
    callback = ConfinedCheckpoint(dirpath=str(tmp_path / "ckpt"))
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "sub").mkdir()
    inside = str(tmp_path / "ckpt" / "best.ckpt")
    assert callback.confined(inside) == inside
    assert callback.confined(str(tmp_path / "ckpt" / "x" / ".." / "best.ckpt")) == inside
    for outside in [str(tmp_path / "ckpt" / ".." / "best.ckpt"), str(tmp_path / "other.ckpt"),
                    str(tmp_path / "ckpt" / "sub"), str(tmp_path / "ckpt" / "sub" / "a.ckpt"),
                    "s3://bucket/best.ckpt", "", None, 3]:
        assert callback.confined(outside) == "", outside
