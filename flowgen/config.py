"""Hydra/OmegaConf glue shared by the entry points and the tests."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent
#: Run from a checkout (``python train.py``, ``pip install -e .``): the checkout, where
#: ``configs/``, ``data/``, ``checkpoints/`` and ``outputs/`` live. Installed from a wheel
#: (``flowgen-train``): the configs and the embedded data ship inside the package, and runs write
#: under the working directory.
IN_CHECKOUT = (_CHECKOUT / "configs" / "train.yaml").is_file()
PROJECT_ROOT = _CHECKOUT if IN_CHECKOUT else None
CONFIG_DIR = _CHECKOUT / "configs" if IN_CHECKOUT else PACKAGE_DIR / "configs"
#: The embedded default dataset's folder: ``data/`` of a checkout, ``flowgen/embedded`` installed.
EMBEDDED_DATA_DIR = _CHECKOUT / "data" if IN_CHECKOUT else PACKAGE_DIR / "embedded"


def project_root() -> str:
    """Where runs write by default: the checkout, else (installed) the working directory."""
    return str(PROJECT_ROOT if PROJECT_ROOT is not None else Path.cwd())


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
    """Resolvers the configs use: ``${project_root:}`` (see :func:`project_root`),
    ``${embedded_data:}`` (the embedded dataset's folder), ``${job_suffix:}`` and
    ``${run_dir:name}``."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", project_root)
    if not OmegaConf.has_resolver("embedded_data"):
        OmegaConf.register_new_resolver("embedded_data", lambda: str(EMBEDDED_DATA_DIR))
    if not OmegaConf.has_resolver("job_suffix"):
        OmegaConf.register_new_resolver("job_suffix", _job_suffix)
    if not OmegaConf.has_resolver("run_dir"):
        OmegaConf.register_new_resolver("run_dir", _run_dir)


register_resolvers()
