"""Checkpoint writes are atomic: an interrupted write leaves the previous checkpoint loadable."""

from __future__ import annotations

import os

import pytest
import torch

from flowgen.models import load_model
from flowgen.training import train
from flowgen.training.checkpoint_io import atomic_write_bytes
from tests.conftest import compose_train


def test_an_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_write_bytes(b"previous, complete", path)
    real_fsync = os.fsync

    def killed_mid_write(fd):  # the process dies after half the bytes reached the disk
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(b"new" * 1000, path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == b"previous, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_training_checkpoints_survive_an_interrupted_save(tmp_path, monkeypatch):
    cfg = compose_train(["trainer.max_steps=2", "trainer.val_check_interval=2"], tmp_path)
    train(cfg)
    last = tmp_path / "ckpt" / "last.ckpt"
    before = last.read_bytes()
    model_before, _ = load_model(last)

    def dies_mid_write(fd):
        raise RuntimeError("killed mid-write")

    # the next save (after resuming and two more steps) dies after writing its bytes
    monkeypatch.setattr(os, "fsync", dies_mid_write)
    cfg = compose_train(["trainer.max_steps=4", "trainer.val_check_interval=2",
                         f"ckpt_path={last}"], tmp_path)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        train(cfg)
    monkeypatch.undo()
    assert last.read_bytes() == before
    model_after, _ = load_model(last)
    x = torch.rand(2, 1, 32, 32) - 0.5
    torch.testing.assert_close(model_after.log_prob(x), model_before.log_prob(x))
