"""The validated settings of one ``sample.py`` call, read from its composed config.

Every check here runs before the checkpoint is loaded or anything is written, so a bad value
fails at once with one line naming it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from flowgen.models.multiscale import check_sampling_args

MODES = ("grid", "interpolate")
METHODS = ("linear", "slerp")
ENDPOINTS = ("random", "data")


@dataclass(frozen=True)
class Settings:
    ckpt: Path
    mode: str
    temperatures: tuple[float, ...]
    seed: int
    device: torch.device
    batch_size: int
    out: Path | None  # None: the default folder, see :func:`output_dir`
    n: int
    nrow: int
    endpoints: str
    indices: tuple[int, int]
    method: str
    steps: int
    frame_ms: int
    gif_scale: int
    label: int | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(ckpt=str(self.ckpt), device=str(self.device), out=str(self.out),
                 temperatures=list(self.temperatures), indices=list(self.indices))
        if self.label is None:
            del d["label"]
        if self.mode == "grid":
            for key in ("endpoints", "indices", "method", "steps", "frame_ms", "gif_scale"):
                del d[key]
        else:
            del d["n"], d["nrow"]
            if self.endpoints == "data":
                del d["temperatures"]
            else:
                del d["indices"]
        return d


def _int(cfg: DictConfig, key: str, minimum: int) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _choice(cfg: DictConfig, key: str, options: tuple[str, ...]) -> str:
    value = cfg.get(key)
    if value not in options:
        raise ValueError(f"{key} must be one of {'|'.join(options)}, got {value!r}")
    return value


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device=cuda but CUDA is not available here: use device=cpu or auto")
        return torch.device("cuda")
    raise ValueError(f"device must be auto|cpu|cuda, got {name!r}")


def resolve_ckpt(path: str, root_dir: str | Path) -> Path:
    """A relative path is taken from the working directory, else from the project root."""
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and (Path(root_dir) / p).exists():
        p = Path(root_dir) / p
    return p.absolute()


def parse_settings(cfg: DictConfig) -> Settings:
    if OmegaConf.is_missing(cfg, "ckpt") or not cfg.get("ckpt"):
        raise ValueError("no checkpoint given: pass ckpt=checkpoints/<run>/last.ckpt")
    mode = _choice(cfg, "mode", MODES)
    temps = cfg.get("temperature")
    temps = list(temps) if isinstance(temps, (ListConfig, list, tuple)) else [temps]
    if not temps:
        raise ValueError("temperature is an empty list: give a number or a list of numbers")
    n = cfg.get("n")
    for t in temps:  # the model's own checks, with n only where it is used
        check_sampling_args(n if mode == "grid" else 2, t)
    nrow = cfg.get("nrow")
    if nrow is None:
        nrow = math.ceil(math.sqrt(n)) if mode == "grid" else 1
    elif isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow must be an integer >= 1 or null, got {nrow!r}")
    endpoints = _choice(cfg, "endpoints", ENDPOINTS)
    indices = cfg.get("indices")
    if not isinstance(indices, (ListConfig, list, tuple)) or len(indices) != 2 or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise ValueError(f"indices must be two integers like [0,1], got {indices!r}")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    out = cfg.get("out")
    return Settings(
        ckpt=resolve_ckpt(str(cfg.ckpt), cfg.paths.root_dir),
        mode=mode,
        temperatures=tuple(float(t) for t in temps),
        seed=seed,
        device=resolve_device(cfg.get("device")),
        batch_size=_int(cfg, "batch_size", 1),
        out=Path(str(out)).expanduser().absolute() if out else None,
        n=n,
        nrow=nrow,
        endpoints=endpoints,
        indices=(int(indices[0]), int(indices[1])),
        method=_choice(cfg, "method", METHODS),
        steps=_int(cfg, "steps", 2),
        frame_ms=_int(cfg, "frame_ms", 1),
        gif_scale=_int(cfg, "gif_scale", 1),
        label=cfg.get("label"),
    )


def output_dir(settings: Settings, root_dir: str | Path) -> Path:
    """``settings.out``, else ``<root_dir>/outputs/<checkpoint's folder>/<mode>-<time>/`` (a
    fresh one: ``-1``, ``-2``... is appended when that second's folder exists). Created here."""
    if settings.out is not None:
        out = settings.out
    else:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        base = Path(root_dir) / "outputs" / settings.ckpt.parent.name / f"{settings.mode}-{stamp}"
        out, k = base, 0
        while out.exists():
            k += 1
            out = base.with_name(f"{base.name}-{k}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the output folder {out}: {err.strerror or err}") from err
    if not out.is_dir():
        raise OSError(f"cannot write into {out}: not a folder")
    return out


def temperature_tag(t: float) -> str:
    """``0.7 -> "T0.70"``; more digits only where two decimals would round."""
    return f"T{t:.2f}" if round(t, 2) == t else f"T{t:g}"
