"""In-memory uint8 image datasets read from ``.npz`` files, plus shared helpers.

An ``.npz`` holds ``x_train``/``x_test`` (uint8 ``[N,H,W]`` grey or ``[N,H,W,C]`` colour, square)
and optional int labels ``y_train``/``y_test``. Loaded splits are ``TensorDataset(x, y)`` with
``x`` uint8 ``[N,C,H,W]`` and ``y`` int64 ``[N]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST5K_PATH = REPO_ROOT / "data" / "mnist5k.npz"


def centre_padding(size: int, target: int) -> tuple[int, int]:
    """(before, after) zero padding taking ``size`` to ``target``; odd remainders go after."""
    if target < size:
        raise ValueError(
            f"image_size={target} is smaller than the stored images ({size}x{size}); "
            f"cropping is not supported, use image_size>={size} or leave it unset"
        )
    before = (target - size) // 2
    return before, target - size - before


def resolve_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    # Relative paths like "data/mnist5k.npz" should work whatever the working directory.
    if not p.is_absolute() and not p.exists() and (REPO_ROOT / p).exists():
        return REPO_ROOT / p
    return p


def _npy_header(npz: np.lib.npyio.NpzFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``key`` from its .npy header, without decompressing the data."""
    fmt = np.lib.format
    with npz.zip.open(f"{key}.npy") as f:
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype


def inspect_npz(path: Path) -> tuple[int, int]:
    """Validate keys, dtypes and shapes from the headers only; return (channels, size)."""
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path} (set data.path=/path/to/file.npz)")
    try:
        # Open the file ourselves: np.load leaks its handle when the archive is corrupt.
        with open(path, "rb") as f, np.load(f) as npz:
            found = sorted(npz.files)
            headers = {k: _npy_header(npz, k) for k in ("x_train", "x_test") if k in found}
    except Exception as e:  # np.load fails in many ways (BadZipFile, pickle, EOF, .npy given)
        raise ValueError(
            f"cannot read {path} as an .npz archive ({e!r}); "
            f"regenerate it or point data.path at a valid file"
        ) from e
    if len(headers) < 2:
        raise ValueError(
            f"{path} has keys {found}, need x_train and x_test (y_train and y_test optional)"
        )
    for key, (shape, dtype) in headers.items():
        if dtype != np.uint8:
            raise ValueError(
                f"{path}: {key} has dtype {dtype}, need uint8 pixels 0..255 "
                f"(convert with (x * 255).round().astype(np.uint8) if in [0, 1])"
            )
        if len(shape) not in (3, 4):
            raise ValueError(
                f"{path}: {key} has shape {shape} ({len(shape)} dims), "
                f"need [N,H,W] (grey) or [N,H,W,C] (colour, channels last)"
            )
        if shape[1] != shape[2]:
            raise ValueError(
                f"{path}: {key} images are {shape[1]}x{shape[2]}, need square "
                f"images (NHWC layout expected; NCHW must be transposed)"
            )
    train, test = headers["x_train"][0][1:], headers["x_test"][0][1:]
    if train != test:
        raise ValueError(f"{path}: x_train images {train} and x_test images {test} differ in shape")
    return (train[2] if len(train) == 3 else 1), train[0]


def _load_split(npz: np.lib.npyio.NpzFile, split: str, pad: tuple[int, int]) -> TensorDataset:
    x = torch.from_numpy(npz[f"x_{split}"])
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = F.pad(x, (*pad, *pad)).contiguous()  # the one NHWC->NCHW copy, not one per batch
    y_key = f"y_{split}"
    if y_key not in npz.files:
        return TensorDataset(x, torch.zeros(len(x), dtype=torch.int64))
    y = torch.from_numpy(npz[y_key].astype(np.int64)).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{npz.zip.filename}: {y_key} has {len(y)} labels for {len(x)} images")
    return TensorDataset(x, y)


def load_npz(path: Path, image_size: int | None = None) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) datasets from a file ``inspect_npz`` accepted, zero-padded centred to
    ``image_size`` (default: the stored size)."""
    _, size = inspect_npz(path)
    pad = centre_padding(size, image_size or size)
    with np.load(path) as npz:
        return _load_split(npz, "train", pad), _load_split(npz, "test", pad)
