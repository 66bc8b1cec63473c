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


#: How to make uint8 pixels from an array of another kind (numpy's dtype.kind).
_UINT8_HOW = {
    "f": "if in [0, 1]: (x * 255).round().astype(np.uint8)",
    "i": "if in 0..255: x.astype(np.uint8); if 16-bit: np.round(x / 257).astype(np.uint8)",
    "b": "x.astype(np.uint8) * 255",
}
_UINT8_HOW["u"] = _UINT8_HOW["i"]


def _check_images(path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse an image array flowgen would misread: not uint8, not [N,H,W(,C)] with C 1 or 3,
    not square, or no images at all."""
    if dtype != np.uint8:
        how = _UINT8_HOW.get(dtype.kind, "save the pixels as an 8-bit array")
        raise ValueError(f"{path}: {key} has dtype {dtype}, need uint8 pixels 0..255 ({how})")
    if len(shape) not in (3, 4):
        raise ValueError(f"{path}: {key} has shape {shape} ({len(shape)} dims), "
                         f"need [N,H,W] (grey) or [N,H,W,C] (colour, channels last)")
    if shape[1] != shape[2]:
        raise ValueError(f"{path}: {key} images are {shape[1]}x{shape[2]}, need square "
                         f"images (NHWC layout expected; NCHW must be transposed)")
    if len(shape) == 4 and shape[3] not in (1, 3):
        raise ValueError(f"{path}: {key} images have {shape[3]} channels, need 1 (grey) or 3 "
                         f"(RGB), channels last: drop or merge the others (e.g. x[..., :3])")
    if shape[0] == 0 or 0 in shape[1:3]:
        raise ValueError(f"{path}: {key} holds no images (shape {shape}): it needs at least one")


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
        _check_images(path, key, shape, dtype)
    train, test = headers["x_train"][0][1:], headers["x_test"][0][1:]
    if train != test:
        raise ValueError(f"{path}: x_train images {train} and x_test images {test} differ in shape")
    return (train[2] if len(train) == 3 else 1), train[0]


def _labels(npz: np.lib.npyio.NpzFile, key: str, n: int) -> torch.Tensor:
    """int64 ``[n]`` class labels from ``npz[key]``: whole numbers >= 0, one per image."""
    where = f"{npz.zip.filename}: {key}"
    try:
        y = npz[key]
    except ValueError as e:  # object arrays need pickle, which is never allowed
        raise ValueError(f"{where} cannot be read without pickle ({e}): save integers") from e
    if y.dtype.kind not in "iubf":
        raise ValueError(f"{where} has dtype {y.dtype}, need integer class labels 0, 1, ...")
    y = y.reshape(-1)
    if len(y) != n:
        raise ValueError(f"{where} has {len(y)} labels for {n} images (need one per image)")
    bad = ~np.isfinite(y) | (y < 0) | (y != np.round(y)) if y.dtype.kind == "f" else y < 0
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}[{i}] = {y[i]}: labels must be whole numbers >= 0 "
                         f"(class indices 0, 1, ...)")
    return torch.from_numpy(y.astype(np.int64))


def _load_split(npz: np.lib.npyio.NpzFile, split: str, pad: tuple[int, int]) -> TensorDataset:
    x = torch.from_numpy(npz[f"x_{split}"])
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = F.pad(x, (*pad, *pad)).contiguous()  # the one NHWC->NCHW copy, not one per batch
    y_key = f"y_{split}"
    if y_key not in npz.files:
        return TensorDataset(x, torch.zeros(len(x), dtype=torch.int64))
    return TensorDataset(x, _labels(npz, y_key, len(x)))


def load_npz(path: Path, image_size: int | None = None) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) datasets from a file ``inspect_npz`` accepted, zero-padded centred to
    ``image_size`` (default: the stored size)."""
    _, size = inspect_npz(path)
    pad = centre_padding(size, image_size or size)
    with np.load(path) as npz:
        return _load_split(npz, "train", pad), _load_split(npz, "test", pad)
