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

from flowgen.checks import SEED_MAX, Bool, Choice, Int, check, nullable, numbers
from flowgen.models.flow_model import check_sampling_args
from flowgen.sampling.endpoints import endpoint_settings
from flowgen.sampling.limits import check_counts

MODES = ("grid", "interpolate", "reconstruct", "manipulate", "evaluate", "fid")
#: mode=fid: the FID Inception (torchmetrics'; weights from a local file) or a fixed stand-in
FID_FEATURES = ("inception", "standin")
LAYOUTS = ("files", "rows")
#: Settings every mode records; the others only where their mode uses them (see ``to_json``).
COMMON_KEYS = ("ckpt", "mode", "seed", "device", "batch_size", "out")
MODE_KEYS = {
    "grid": ("temperatures", "n", "nrow", "label", "level_temperatures", "layout", "precision"),
    "interpolate": ("temperatures", "endpoints", "n_endpoints", "indices", "images", "pairs",
                    "method", "steps", "frame_ms", "gif_scale", "precision"),
    "reconstruct": ("indices", "images"),
    "manipulate": ("indices", "images", "attribute", "alphas", "max_images"),
    "evaluate": ("limit_batches", "noise_seed"),
    "fid": ("temperatures", "n", "label", "level_temperatures", "fid_features",
            "inception_weights"),
}
METHODS = ("linear", "slerp")
#: Decoding precision: bf16 runs the coupling networks under bf16 autocast (the flow itself
#: stays float32), ~2x faster on CPUs with AVX512-BF16 and on GPUs; pictures only.
PRECISIONS = ("fp32", "bf16")
#: interpolate: the settings each kind of endpoints reads (the others are left out of the record).
ENDPOINT_KEYS = {"random": ("temperatures", "n_endpoints"), "data": ("indices",),
                 "images": ("images",), "pairs": ("pairs",)}


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
    images: tuple[Path, ...] = ()  # interpolate/reconstruct/manipulate: image files
    n_endpoints: int = 2  # interpolate endpoints=random: latents the path goes through
    pairs: tuple[tuple[int | Path, ...], ...] = ()  # interpolate: a row per pair (index or file)
    attribute: int | str | None = None  # manipulate: a class label or a named (CelebA) attribute
    alphas: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)  # manipulate: edit strengths
    max_images: int = 1000  # manipulate: validation images averaged for the direction
    limit_batches: int | None = None  # evaluate: only the first batches (None: the whole split)
    noise_seed: int | None = None  # evaluate: the fixed noise of a run with val_noise_seed
    fid_features: str = "inception"  # fid: the feature extractor (FID_FEATURES)
    inception_weights: str | None = None  # fid: torchvision's Inception-v3 weights file
    progress: bool = True  # progress bars (stderr) for runs of more than one batch
    ema: bool | None = None  # True: EMA weights, False: trained ones, None: EMA if any
    precision: str = "fp32"  # grid/interpolate: fp32 | bf16 (coupling networks in bf16)

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(ckpt=str(self.ckpt), device=str(self.device), out=str(self.out),
                 temperatures=list(self.temperatures), indices=list(self.indices),
                 images=[str(p) for p in self.images], alphas=list(self.alphas),
                 pairs=[[e if isinstance(e, int) else str(e) for e in row] for row in self.pairs])
        if self.level_temperatures is not None:
            d["level_temperatures"] = list(self.level_temperatures)
        keys = set(COMMON_KEYS) | set(MODE_KEYS[self.mode])
        if self.label is None:
            keys.discard("label")
        if self.level_temperatures is None:
            keys.discard("level_temperatures")
        if self.mode == "interpolate":
            keys -= {k for kind, used in ENDPOINT_KEYS.items() if kind != self.endpoints
                     for k in used}
        if self.mode in ("reconstruct", "manipulate"):
            keys.discard("indices" if self.images else "images")
        return {k: v for k, v in d.items() if k in keys}


#: Seeds (as in training: numpy's uint32 range, which Lightning's seed_everything takes).
SEED = Int(0, SEED_MAX)
#: GIF frame times are stored in 1/100 s in 16 bits: Pillow cannot write a longer one.
GIF_MAX_MS = 655350


def _int(cfg: DictConfig, key: str, minimum: int, maximum: int | None = None,
         hint: str = "") -> int:
    return check(key, cfg.get(key), Int(minimum, maximum), hint)


def _choice(cfg: DictConfig, key: str, options: tuple[str, ...]) -> str:
    return check(key, cfg.get(key), Choice(options))


def _numbers(cfg: DictConfig, key: str, minimum: float | None = None) -> tuple[float, ...]:
    """A non-empty list of finite numbers (``>= minimum`` if given)."""
    return numbers(key, cfg.get(key), minimum)


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
        check_sampling_args(n if mode in ("grid", "fid") else 2, t)
    layout = _choice(cfg, "layout", LAYOUTS)
    nrow = check("nrow", cfg.get("nrow"), nullable(Int(1)), "null: ceil(sqrt(n))")
    if mode == "grid" and layout == "rows":
        nrow = n  # one row per temperature
    elif nrow is None:
        nrow = math.ceil(math.sqrt(n)) if mode == "grid" else 1
    indices, integers, images, pairs, endpoints = endpoint_settings(cfg, mode)
    options = _mode_options(cfg, mode)
    out = cfg.get("out")
    settings = Settings(
        **options,
        ckpt=resolve_ckpt(str(cfg.ckpt), cfg.paths.root_dir),
        mode=mode,
        temperatures=tuple(float(t) for t in temps),
        device=resolve_device(cfg.get("device")),
        batch_size=_int(cfg, "batch_size", 1),
        out=Path(str(out)).expanduser().absolute() if out else None,
        n=n,
        nrow=nrow,
        endpoints=endpoints,
        indices=tuple(int(i) for i in indices) if integers else (),
        method=_choice(cfg, "method", METHODS),
        steps=_int(cfg, "steps", 2),
        frame_ms=_int(cfg, "frame_ms", 1, GIF_MAX_MS, "the GIF format's longest frame"),
        gif_scale=_int(cfg, "gif_scale", 1),
        label=check("label", cfg.get("label"), nullable(Int(0)), "a class of the checkpoint"),
        layout=layout,
        images=images,
        n_endpoints=_int(cfg, "n_endpoints", 2),
        pairs=pairs,
        alphas=_numbers(cfg, "alphas"),
        max_images=_int(cfg, "max_images", 2),
    )
    check_counts(settings)  # the caps in values need the checkpoint: see limits.check_memory
    return settings


def _mode_options(cfg: DictConfig, mode: str) -> dict:
    """The settings beside the pictures' own: seed, per-level temperatures, the attribute to
    edit, evaluation's batches and noise, progress, EMA and precision, checked for ``mode``."""
    seed = check("seed", cfg.get("seed"), SEED)
    level_temperatures = cfg.get("level_temperatures")
    if level_temperatures is not None:
        level_temperatures = _numbers(cfg, "level_temperatures", 0.0)
    attribute = cfg.get("attribute")
    label = isinstance(attribute, int) and not isinstance(attribute, bool) and attribute >= 0
    name = isinstance(attribute, str) and attribute.strip() != ""
    if mode == "manipulate" and not (label or name):
        raise ValueError(f"attribute must be a class label (an integer >= 0) whose images are "
                         f"compared with the others', e.g. attribute=3, or an attribute name "
                         f"of the data (CelebA), e.g. attribute=Smiling; got {attribute!r}")
    limit_batches = cfg.get("limit_batches")
    if limit_batches is not None:
        limit_batches = _int(cfg, "limit_batches", 1)
    noise_seed = cfg.get("noise_seed")
    if noise_seed is not None:
        noise_seed = check("noise_seed", noise_seed, SEED, "the val_noise_seed of the run")
    progress = check("progress", cfg.get("progress"), Bool())
    ema = cfg.get("ema", "auto")
    if not isinstance(ema, bool) and ema != "auto":
        raise ValueError(f"ema must be auto, true or false, got {ema!r}")
    precision = _choice(cfg, "precision", PRECISIONS) if "precision" in cfg else "fp32"
    if precision != "fp32" and mode not in ("grid", "interpolate"):
        raise ValueError(f"precision={precision} is for pictures (mode=grid|interpolate); "
                         f"mode={mode} needs exact float32 encoding: use precision=fp32")
    fid_features = _choice(cfg, "fid_features", FID_FEATURES) if "fid_features" in cfg \
        else "inception"
    weights = cfg.get("inception_weights")
    if mode == "fid" and fid_features == "inception" and not weights:
        raise ValueError("mode=fid needs the FID Inception weights from a local file (no "
                         "download at run time): inception_weights=<path to "
                         "weights-inception-2015-12-05-6726825d.pth>, or fid_features=standin")
    return dict(seed=seed, level_temperatures=level_temperatures, attribute=attribute,
                limit_batches=limit_batches, noise_seed=noise_seed, progress=progress,
                ema=None if ema == "auto" else ema, precision=precision,
                fid_features=fid_features,
                inception_weights=str(weights) if weights else None)


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
