"""The progress display: tqdm on a terminal, one plain line every N steps in a log file."""

from __future__ import annotations

import io
import logging

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel

from flowgen.training.progress import LineProgressBar, default_progress_bar, with_progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tqdm_on_a_terminal_plain_lines_elsewhere():
    assert isinstance(default_progress_bar(_Terminal()), TQDMProgressBar)
    assert isinstance(default_progress_bar(io.StringIO(), every_n_steps=7), LineProgressBar)
    given = TQDMProgressBar(refresh_rate=50)
    assert with_progress_bar([given], None) == [given]  # the user's own bar wins
    assert with_progress_bar([], False) == []  # trainer.enable_progress_bar=false


def test_the_line_interval_comes_from_the_training_config(tmp_path):
    from flowgen.training import build
    from tests.conftest import compose_train

    _, _, trainer = build(compose_train(["progress_every_n_steps=7"], tmp_path))
    (bar,) = [c for c in trainer.callbacks if isinstance(c, LineProgressBar)]  # pytest: no tty
    assert bar.every_n_steps == 7


def test_a_line_every_n_steps_and_nothing_in_between(caplog):
    trainer = L.Trainer(accelerator="cpu", max_steps=7, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        callbacks=[LineProgressBar(every_n_steps=3)])
    with caplog.at_level(logging.INFO, logger="flowgen.training.progress"):
        trainer.fit(BoringModel())
    lines = [r.getMessage() for r in caplog.records if r.name == "flowgen.training.progress"]
    assert [line.split(",")[0] for line in lines] == ["step 3/7", "step 6/7"], lines
    assert all("steps/s" in line for line in lines)
