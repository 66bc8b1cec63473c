"""Hydra/OmegaConf glue shared by the entry points and the tests."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

#: The checkout's root (where ``configs/``, ``data/`` and ``checkpoints/`` live).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"


def _job_suffix() -> str:
    """``-<job number>`` inside a Hydra multirun, else ``""``: sweep jobs started in the same
    second must not share (and overwrite) a checkpoint folder."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return ""
    hydra_cfg = HydraConfig.get()
    return f"-{hydra_cfg.job.num}" if hydra_cfg.mode == RunMode.MULTIRUN else ""


def check_run_name(name: object) -> str:
    """``name`` as a string if it can name a folder in ``checkpoints/`` and ``outputs/`` (one
    path component: no separators, not ``.``/``..``, printable); else a ``ValueError``."""
    text = str(name) if isinstance(name, (str, int)) and not isinstance(name, bool) else None
    if (not text or text in (".", "..") or any(c in text for c in "/\\")
            or not text.isprintable() or len(text) > 200):
        raise ValueError(f"run_name={name!r} cannot name a run folder: use letters, digits and "
                         f"-_.= (no '/' or '..', at most 200 characters), e.g. run_name=glow-mnist")
    return text


def _run_dir(name) -> str:
    """``run_name`` checked before Hydra makes ``outputs/<run_name>/``: a name that would escape
    ``outputs/`` ends the command with one line (raising here would print Hydra's traceback)."""
    from flowgen.cli import exit_with_error

    try:
        return check_run_name(name)
    except ValueError as err:
        exit_with_error(err)
        raise  # unreachable: exit_with_error exits


def register_resolvers() -> None:
    """Resolvers the configs use: ``${project_root:}`` (paths that work whatever the working
    directory), ``${job_suffix:}`` and ``${run_dir:name}``."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("job_suffix"):
        OmegaConf.register_new_resolver("job_suffix", _job_suffix)
    if not OmegaConf.has_resolver("run_dir"):
        OmegaConf.register_new_resolver("run_dir", _run_dir)


register_resolvers()
