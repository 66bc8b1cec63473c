"""One run, one record: the loggers of a run that is stopped and resumed, however often.

A run is its ``run_name``. Every command that trains it (the first, each ``ckpt_path=last``
after SIGTERM, each SLURM requeue) logs into the same W&B run (its id derived from the name,
W&B's ``resume="allow"``) and appends to the same ``metrics.csv`` (no ``version_<n>`` folder per
resume). The command lines are kept by :mod:`flowgen.training.run_dir` (``.hydra/``,
``.hydra/resume-<n>/``).
"""

from __future__ import annotations

import csv
import hashlib
import re

from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig

#: W&B run ids: letters, digits, ``_`` and ``-``; kept well under W&B's length limit.
_ID_CHARS = re.compile(r"[^a-z0-9_-]+")
_ID_PREFIX_LEN = 40


def wandb_run_id(run_name: str) -> str:
    """The W&B run id of ``run_name``: the name lowercased with other characters as ``-`` (at
    most 40 of them), then ``-`` and 8 hex digits of the name's SHA-1, so that names that
    differ only in case or punctuation still get distinct ids. Deterministic: the same name
    gives the same id in every process."""
    prefix = _ID_CHARS.sub("-", str(run_name).lower()).strip("-")[:_ID_PREFIX_LEN]
    digest = hashlib.sha1(str(run_name).encode()).hexdigest()[:8]
    return f"{prefix}-{digest}" if prefix else digest


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued (its header
    read back) rather than deleted: a resumed run adds its rows under the first part's."""

    def _check_log_dir_exists(self) -> None:
        # Lightning's version warns and deletes metrics.csv; here it is the run's history.
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                header = next(csv.reader(file), [])
            self.metrics_keys = sorted(header)


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` with one fixed folder, ``<save_dir>/<name>/metrics.csv`` (``version=""``:
    no ``version_<n>``), appended to by every command of the run."""

    def __init__(self, save_dir: str, name: str = "csv", version: int | str = "", **kwargs):
        super().__init__(save_dir, name=name, version=version, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class QuietWandbLogger(WandbLogger):
    """Lightning's W&B logger without the ``anonymous=None`` it always passes to ``wandb.init``
    (wandb 0.31 then warns that the setting has no effect, on every run)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """Every logger of ``cfg.logger``; a W&B logger with no ``id`` gets
    :func:`wandb_run_id` of ``cfg.run_name`` (and ``resume="allow"`` unless set), so the run's
    commands share one W&B run without the user naming it."""
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if not node:
            continue
        extra = {}
        if issubclass(get_class(node._target_), WandbLogger) and node.get("id") is None:
            extra["id"] = wandb_run_id(cfg.run_name)
            if node.get("resume") is None:
                extra["resume"] = "allow"
        loggers.append(instantiate(node, **extra))
    return loggers

