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

MODES = ("grid", "interpolate", "reconstruct", "manipulate", "evaluate")
LAYOUTS = ("files", "rows")
#: Settings every mode records; the others only where their mode uses them (see ``to_json``).
COMMON_KEYS = ("ckpt", "mode", "seed", "device", "batch_size", "out")
MODE_KEYS = {
    "grid": ("temperatures", "n", "nrow", "label", "level_temperatures", "layout"),
    "interpolate": ("temperatures", "endpoints", "indices", "method", "steps", "frame_ms",
                    "gif_scale"),
    "reconstruct": ("indices", "images"),
    "manipulate": ("indices", "images", "attribute", "alphas", "max_images"),
    "evaluate": ("limit_batches",),
}
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
    indices: tuple[int, ...]
    method: str
    steps: int
    frame_ms: int
    gif_scale: int
    label: int | None = None
    level_temperatures: tuple[float, ...] | None = None  # grid: one factor per level
    layout: str = "files"  # grid: files (one per temperature) | rows (one picture)
    images: tuple[Path, ...] = ()  # reconstruct/manipulate: image files instead of indices
    attribute: int | None = None  # manipulate: the class label that is the attribute
    alphas: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)  # manipulate: edit strengths
    max_images: int = 1000  # manipulate: validation images averaged for the direction
    limit_batches: int | None = None  # evaluate: only the first batches (None: the whole split)
    progress: bool = True  # progress bars (stderr) for runs of more than one batch

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(ckpt=str(self.ckpt), device=str(self.device), out=str(self.out),
                 temperatures=list(self.temperatures), indices=list(self.indices),
                 images=[str(p) for p in self.images], alphas=list(self.alphas))
        if self.level_temperatures is not None:
            d["level_temperatures"] = list(self.level_temperatures)
        keys = set(COMMON_KEYS) | set(MODE_KEYS[self.mode])
        if self.label is None:
            keys.discard("label")
        if self.level_temperatures is None:
            keys.discard("level_temperatures")
        if self.mode == "interpolate":
            keys.discard("temperatures" if self.endpoints == "data" else "indices")
        if self.mode in ("reconstruct", "manipulate"):
            keys.discard("indices" if self.images else "images")
        return {k: v for k, v in d.items() if k in keys}


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


def _numbers(cfg: DictConfig, key: str, minimum: float | None = None) -> tuple[float, ...]:
    """A non-empty list of finite numbers (``>= minimum`` if given)."""
    value = cfg.get(key)
    what = "a list of finite numbers" + (f" >= {minimum:g}" if minimum is not None else "")
    if not isinstance(value, (ListConfig, list, tuple)) or not value:
        raise ValueError(f"{key} must be {what} like [1.0,0.8], got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or (minimum is not None and v < minimum):
            raise ValueError(f"{key} must be {what}, got {list(value)!r}")
    return tuple(float(v) for v in value)


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
    layout = _choice(cfg, "layout", LAYOUTS)
    nrow = cfg.get("nrow")
    if nrow is not None and (isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1):
        raise ValueError(f"nrow must be an integer >= 1 or null, got {nrow!r}")
    if mode == "grid" and layout == "rows":
        nrow = n  # one row per temperature
    elif nrow is None:
        nrow = math.ceil(math.sqrt(n)) if mode == "grid" else 1
    endpoints = _choice(cfg, "endpoints", ENDPOINTS)
    indices = cfg.get("indices")
    integers = isinstance(indices, (ListConfig, list, tuple)) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in indices)
    if mode == "interpolate" and (not integers or len(indices) != 2):
        raise ValueError(f"indices must be two integers like [0,1], got {indices!r}")
    images = _image_paths(cfg) if mode in ("reconstruct", "manipulate") else ()
    if mode in ("reconstruct", "manipulate") and not images and (not integers or not indices):
        raise ValueError(f"indices must be a non-empty list of integers like [0,1,2] (or give "
                         f"images=[path,...]), got {indices!r}")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    level_temperatures = cfg.get("level_temperatures")
    if level_temperatures is not None:
        level_temperatures = _numbers(cfg, "level_temperatures", 0.0)
    attribute = cfg.get("attribute")
    if mode == "manipulate" and (isinstance(attribute, bool) or not isinstance(attribute, int)
                                 or attribute < 0):
        raise ValueError(f"attribute must be a class label (an integer >= 0) whose images are "
                         f"compared with the others', e.g. attribute=3; got {attribute!r}")
    limit_batches = cfg.get("limit_batches")
    if limit_batches is not None:
        limit_batches = _int(cfg, "limit_batches", 1)
    progress = cfg.get("progress")
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be true or false, got {progress!r}")
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
        indices=tuple(int(i) for i in indices) if integers else (),
        method=_choice(cfg, "method", METHODS),
        steps=_int(cfg, "steps", 2),
        frame_ms=_int(cfg, "frame_ms", 1),
        gif_scale=_int(cfg, "gif_scale", 1),
        label=cfg.get("label"),
        level_temperatures=level_temperatures,
        layout=layout,
        images=images,
        attribute=attribute,
        alphas=_numbers(cfg, "alphas"),
        max_images=_int(cfg, "max_images", 2),
        limit_batches=limit_batches,
        progress=progress,
    )


def _image_paths(cfg: DictConfig) -> tuple[Path, ...]:
    """``images=[path,...]`` (relative to the working directory), each an existing file."""
    value = cfg.get("images") or []
    if isinstance(value, str) or not isinstance(value, (ListConfig, list, tuple)):
        raise ValueError(f"images must be a list of image files like [a.png,b.png], got {value!r}")
    paths = tuple(Path(str(v)).expanduser().absolute() for v in value)
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {p}")
    return paths


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
