"""Which images ``sample.py`` encodes or interpolates between: ``indices`` of the validation
split, ``images`` files, ``pairs`` rows, or random endpoints; checked before anything is loaded."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from flowgen.checks import Choice, Int, ListOf, check

ENDPOINTS = ("random", "data", "images", "pairs")


def endpoint_settings(cfg: DictConfig, mode: str) -> tuple:
    """``(indices, whether they are integers, images, pairs, endpoints)`` for ``mode``, each
    checked against what the mode needs."""
    indices = cfg.get("indices")
    integers = ListOf(Int(0), lo_len=0).allows(indices)  # validation indices: >= 0
    images = _image_paths(cfg) if mode in ("interpolate", "reconstruct", "manipulate") else ()
    pairs = _pairs(cfg) if mode == "interpolate" else ()
    endpoints = (_endpoints(cfg, images, pairs) if mode == "interpolate"
                 else check("endpoints", cfg.get("endpoints"), Choice(ENDPOINTS)))
    if mode == "interpolate" and endpoints == "data" and (not integers or len(indices) < 2):
        raise ValueError(f"indices must be two or more integers >= 0 like [0,1] or [0,1,2], got "
                         f"{indices!r}")
    if mode == "interpolate" and endpoints == "images" and len(images) < 2:
        raise ValueError(f"images must list two or more image files to interpolate between, "
                         f"got {[str(p) for p in images]}")
    if mode in ("reconstruct", "manipulate") and not images and (not integers or not indices):
        raise ValueError(f"indices must be a non-empty list of integers >= 0 like [0,1,2] (or "
                         f"give images=[path,...]), got {indices!r}")
    return indices, integers, images, pairs, endpoints


def _image_paths(cfg: DictConfig) -> tuple[Path, ...]:
    """``images=[path,...]`` (relative to the working directory), each an existing file."""
    value = cfg.get("images") or []
    if isinstance(value, str) or not isinstance(value, (ListConfig, list, tuple)):
        raise ValueError(f"images must be a list of image files like [a.png,b.png], got {value!r}")
    return tuple(_existing_file(v) for v in value)


def _existing_file(value) -> Path:
    path = Path(str(value)).expanduser().absolute()
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    return path


def _endpoints(cfg: DictConfig, images: tuple[Path, ...], pairs: tuple) -> str:
    """interpolate: which endpoints. ``images=[...]`` or ``pairs=[...]`` pick themselves, so
    ``endpoints=`` need not name them; naming another kind beside them is a conflict."""
    chosen = check("endpoints", cfg.get("endpoints"), Choice(ENDPOINTS))
    if images and pairs:
        raise ValueError("give images=[...] or pairs=[...] to interpolate, not both")
    given = "images" if images else "pairs" if pairs else None
    if given is None and chosen in ("images", "pairs"):
        example = {"images": "[a.png,b.png]", "pairs": "[[0,1],[2,3]]"}[chosen]
        raise ValueError(f"endpoints={chosen} needs {chosen}=[...], e.g. {chosen}={example}")
    if given is not None and chosen not in ("random", given):  # random: the default, overridden
        raise ValueError(f"endpoints={chosen} but {given}=[...] is given: drop one of them")
    return given or chosen


def _pairs(cfg: DictConfig) -> tuple[tuple[int | Path, ...], ...]:
    """``pairs=[[0,1],[2,3]]``: rows of two or more endpoints each (the same number in every
    row), each a validation index or an image file (relative to the working directory)."""
    value = cfg.get("pairs") or []
    usage = ("pairs must be a list of rows of two or more endpoints, each a validation index or "
             "an image file, like [[0,1],[2,3]] or [[a.png,b.png]]")
    if isinstance(value, str) or not isinstance(value, (ListConfig, list, tuple)) or any(
            isinstance(row, str) or not isinstance(row, (ListConfig, list, tuple))
            or len(row) < 2 for row in value):
        raise ValueError(f"{usage}; got {_plain(value)!r}")
    if len({len(row) for row in value}) > 1:
        raise ValueError(f"every row of pairs needs the same number of endpoints (one frame count "
                         f"per row), got {_plain(value)!r}")
    rows = []
    for row in value:
        entries = []
        for e in row:
            if isinstance(e, bool) or not isinstance(e, (int, str)):
                raise ValueError(f"{usage}; got {e!r} in {_plain(value)!r}")
            entries.append(e if isinstance(e, int) else _existing_file(e))
        rows.append(tuple(entries))
    return tuple(rows)


def _plain(value):
    return OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
