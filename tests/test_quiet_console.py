"""A quiet, readable console (issue 13, item 4 and acceptance 4): a default training run prints no
Python warning lines, ``--help`` prints a short usage, the learning rate is ``train/lr``, the
interpolation is also a GIF, and ``logger=tensorboard`` exists.

The end-to-end checks run the real scripts in subprocesses (each imports torch and Lightning:
~10 s), all started at once so the three overlap."""

from __future__ import annotations

import csv
import logging
import os
import re
import subprocess
import sys
import warnings

import pytest
import torch
from lightning.fabric.utilities.warnings import PossibleUserWarning
from omegaconf import OmegaConf
from PIL import Image

from flowgen.cli import KNOWN_WARNINGS, quiet_console
from flowgen.training.callbacks import NamespacedLRMonitor, save_gif
from tests.conftest import ROOT

#: A Python warning as printed by Python (``...: SomeWarning: ...``), by ``warnings.warn``'s
#: source line, or by Lightning's own format (``/path/file.py:123: message``, no category).
WARNING_LINE = re.compile(r"Warning|warnings\.warn|\.py:\d+: ")
#: A default run, tiny: validation (hence the sample grid and the W&B GIF) after each of two
#: steps, the lr logged every step; W&B (the default logger, offline) plus CSV to read metrics.
TINY_RUN = ["model.steps=1", "model.hidden_channels=4", "data.batch_size=4", "trainer.max_steps=2",
            "trainer.val_check_interval=1", "trainer.limit_val_batches=1",
            "trainer.log_every_n_steps=1", "logger=[csv,wandb]"]


def _start(args: list[str]) -> subprocess.Popen:
    # Python's default warning filters, whatever the test session's are: what a user sees
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="offline")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (returncode, stdout+stderr, run folder) of the three scripts, run concurrently."""
    tmp = tmp_path_factory.mktemp("quiet")
    procs = {
        "train": _start(["train.py", *TINY_RUN, f"hydra.run.dir={tmp / 'run'}",
                         f"paths.checkpoint_dir={tmp / 'ckpt'}"]),
        "train_help": _start(["train.py", "--help"]),
        "sample_help": _start(["sample.py", "--help"]),
    }
    out = {name: p.communicate(timeout=300) for name, p in procs.items()}
    return {name: (procs[name].returncode, text, tmp / "run") for name, (text, _) in out.items()}


def test_a_default_run_prints_no_warning_lines(runs):
    code, text, _ = runs["train"]
    assert code == 0, text[-3000:]
    lines = text.replace("\r", "\n").splitlines()
    assert [line for line in lines if WARNING_LINE.search(line)] == []
    assert not any(line.startswith("💡 Tip") for line in lines)  # Lightning's advertising
    assert "finished after 2 steps" in text


def test_wandb_prints_no_warning(runs):
    assert "wandb: WARNING" not in runs["train"][1]


def test_the_learning_rate_is_logged_as_train_lr(runs):
    code, text, run = runs["train"]
    assert code == 0, text[-3000:]
    [metrics] = (run / "csv").rglob("metrics.csv")
    with metrics.open() as f:
        header = next(csv.reader(f))
    assert "train/lr" in header
    assert not [key for key in header if key.startswith("lr-")]


def test_wandb_gets_the_interpolation_as_a_gif_video(runs):
    code, text, run = runs["train"]
    assert code == 0, text[-3000:]
    gifs = sorted((run / "samples").glob("interp-step*.gif"))
    assert [g.name for g in gifs] == ["interp-step0000001.gif", "interp-step0000002.gif"]
    with Image.open(gifs[0]) as gif:
        assert gif.n_frames > 1
    videos = list(run.glob("wandb/offline-run-*/files/media/videos/interpolation_video_*.gif"))
    assert len(videos) == 2


def test_train_help_is_a_short_usage_not_the_config(runs):
    code, text, _ = runs["train_help"]
    assert code == 0, text
    assert "Usage: python train.py" in text and "Examples:" in text
    assert "logger: csv, tensorboard, wandb" in text  # the groups, with their options
    assert "_target_" not in text and len(text.splitlines()) < 40  # not the composed config


def test_sample_help_lists_its_own_options_only(runs):
    code, text, _ = runs["sample_help"]
    assert code == 0, text
    assert "Usage: python sample.py ckpt=<checkpoint>" in text and "Examples:" in text
    own = OmegaConf.load(ROOT / "configs" / "sample.yaml")
    listed = set(re.findall(r"\w+", text.split("Options", 1)[1]))
    missing = [key for key in own if key not in ("defaults", "hydra") and key not in listed]
    assert missing == []  # every option of sample.yaml is named
    assert "_target_" not in text and "NpzDataModule" not in text  # not the data config
    assert len(text.splitlines()) < 40


@pytest.mark.parametrize("key, expected", [
    ("lr-Adam", "train/lr"), ("lr-Adamax", "train/lr"), ("lr-Adam-momentum", "train/momentum"),
    ("lr-Adam/pg2", "train/lr/pg2"), ("lr-Adam/pg2-weight_decay", "train/weight_decay/pg2"),
    ("warmup", "train/warmup"),  # a scheduler's own name: kept, under train/
])
def test_lr_keys_are_namespaced(key, expected):
    assert NamespacedLRMonitor.namespaced(key) == expected


#: One real message per KNOWN_WARNINGS entry: (category, the module it is attributed to, text)
SAMPLES = [
    (FutureWarning, "lightning.pytorch.utilities._pytree",
     "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and "
     "treespec.is_leaf()` instead."),
    (UserWarning, "lightning.pytorch.callbacks.model_checkpoint",
     "Checkpoint directory /tmp/run/ckpt exists and is not empty."),
    (PossibleUserWarning, "lightning.pytorch.trainer.connectors.data_connector",
     "The 'train_dataloader' does not have many workers which may be a bottleneck."),
]


def test_the_filters_match_module_and_message_only():
    assert len(SAMPLES) == len(KNOWN_WARNINGS)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_console()
        for category, module, text in SAMPLES:
            warnings.warn_explicit(text, category, "f.py", 1, module=module)  # filtered
            warnings.warn_explicit(text, category, "f.py", 2, module="flowgen.x")  # shown
            warnings.warn_explicit("another message", category, "f.py", 3, module=module)  # shown
    assert sorted(w.lineno for w in seen) == [2, 2, 2, 3, 3, 3]


def test_lightning_chatter_is_dropped_and_other_info_kept(caplog):
    quiet_console()
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("💡 Tip: For seamless cloud logging ...")
        log.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]


def test_save_gif_loops_forward_and_back(tmp_path):
    frames = torch.linspace(0, 1, 4).view(4, 1, 1, 1).expand(4, 1, 8, 8)
    with Image.open(save_gif(frames, tmp_path / "a.gif")) as gif:
        assert gif.n_frames == 6 and gif.size == (8, 8)  # 0 1 2 3 2 1


def test_tensorboard_logger_writes_under_the_run_folder():
    cfg = OmegaConf.load(ROOT / "configs" / "logger" / "tensorboard.yaml").tensorboard
    assert cfg._target_ == "lightning.pytorch.loggers.TensorBoardLogger"
    assert OmegaConf.to_container(cfg)["save_dir"] == "${paths.output_dir}"
