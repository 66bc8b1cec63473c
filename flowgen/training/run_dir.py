"""A run's folders belong to that run: claimed under a lock, never mixed with another run's.

``checkpoints/<run_name>/`` holds one run's checkpoints and ``outputs/<run_name>/`` its record.
:func:`claim_run` is called once every check of a ``train.py`` command has passed and before
anything of the run is written: it refuses a second run into a folder that already holds one
(unless it resumes from it, or ``start_over``), a run whose folder another live process holds,
and a checkpoint folder it cannot write; then it removes what killed writers left behind and
appends this command to the run's record.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from flowgen.config import check_run_name
from flowgen.errors import FlowgenError
from flowgen.training.checkpoint_io import remove_stale_temporaries

log = logging.getLogger(__name__)
LOCK_NAME = ".lock"
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def _checkpoints(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.ckpt") if p.is_file()) if folder.is_dir() else []


@contextlib.contextmanager
def _lock(folder: Path, run_name: str) -> Iterator[None]:
    """Hold ``folder/.lock`` (``flock``: the kernel releases it when the process dies, so a
    killed run never blocks the next one)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise OSError(err.errno, f"cannot write checkpoints into {folder} ({err.strerror}): set "
                                 f"paths.checkpoint_dir=<a writable folder>") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise FlowgenError(f"run {run_name!r} is already running ({holder} holds "
                               f"{folder / LOCK_NAME}): wait for it to end, or pick another "
                               f"run_name=...") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _check_one_run(folder: Path, run_name: str, ckpt_path: Path | None,
                   start_over: bool) -> None:
    """Refuse a new run into ``folder`` when it holds checkpoints; ``start_over`` moves them
    aside instead (only under the lock: then no other process writes there)."""
    existing = _checkpoints(folder)
    resumes_here = ckpt_path is not None and ckpt_path.resolve().parent == folder.resolve()
    if not existing or resumes_here:
        return
    if start_over:
        aside = folder / f"previous-{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        aside.mkdir()
        for name in existing:
            os.replace(folder / name, aside / name)
        log.warning("start_over: moved %s of the earlier run to %s", ", ".join(existing), aside)
        return
    raise FlowgenError(f"{folder} already holds a run ({', '.join(existing[:3])}"
                       f"{', ...' if len(existing) > 3 else ''}): resume it with "
                       f"run_name={run_name} ckpt_path=last, pick another run_name=..., or "
                       f"start_over=true to move its checkpoints aside and begin again")


def _write_record(cfg: DictConfig, output_dir: Path) -> Path | None:
    """Append this command to the run's record: ``.hydra/`` for the first, ``.hydra/resume-<n>/``
    for each later one (Hydra's own record would overwrite the first)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():  # composed in a test: no command line to record
        return None
    hydra_cfg = HydraConfig.get()
    record = output_dir / ".hydra"
    if (record / "config.yaml").exists():
        n = 1 + sum(1 for p in record.glob("resume-*") if p.is_dir())
        record = record / f"resume-{n}"
    record.mkdir(parents=True, exist_ok=True)
    (record / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (record / "overrides.yaml").write_text(OmegaConf.to_yaml(list(hydra_cfg.overrides.task)))
    (record / "hydra.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})))
    return record


@contextlib.contextmanager
def claim_run(cfg: DictConfig, ckpt_path: Path | None, is_main: bool = True) -> Iterator[None]:
    """Hold the run's folders while training (see the module docstring). ``is_main``: only the
    global rank 0 process claims; the other ranks of a DDP run pass through."""
    if not is_main:
        yield
        return
    run_name = check_run_name(cfg.run_name)
    folder = Path(cfg.paths.checkpoint_dir)
    start_over = bool(cfg.get("start_over", False))
    if not start_over:  # refused before the lock file is made: a refusal writes nothing
        _check_one_run(folder, run_name, ckpt_path, start_over)
    with _lock(folder, run_name):
        _check_one_run(folder, run_name, ckpt_path, start_over)  # again: it may have changed
        for path in remove_stale_temporaries(folder):
            log.info("removed %s, left by a write that was killed", path)
        output_dir = Path(cfg.paths.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        _write_record(cfg, output_dir)
        handler = logging.FileHandler(output_dir / "train.log")  # appends
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
        try:
            yield
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
