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


def register_resolvers() -> None:
    """Resolvers the configs use: ``${project_root:}`` (paths that work whatever the working
    directory) and ``${job_suffix:}``."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("job_suffix"):
        OmegaConf.register_new_resolver("job_suffix", _job_suffix)


register_resolvers()
