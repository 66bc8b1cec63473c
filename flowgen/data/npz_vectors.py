"""Users' own tabular data: an ``.npz`` of float ``x_train`` and ``x_test`` ``[N, D]`` (and
optionally ``x_val``), standardised per feature with the training rows' statistics.

Reading: ``allow_pickle=False`` always; keys, dtypes and shapes are checked from the headers before
any data is decompressed, then every value must be finite. Validation: ``x_val`` when the file has
it, else ``val_fraction`` of ``x_train``'s rows drawn with ``seed`` (``data.seed``), split off
before the statistics are taken, so no validation row informs them.

Standardisation: ``z = (x - mean) / std`` per feature, ``mean`` and ``std`` (population, float64)
of the training rows only. A constant column (std 0, or below float32's resolution of its mean)
is refused, not given std 1: a flow fitted to a constant concentrates on a point and its NLL runs
to -inf, so no figure would mean anything; drop the column. The statistics travel in the
checkpoint through :meth:`NpzVectorDataModule.state_dict` (Lightning saves a datamodule's state
under its class name, :data:`CHECKPOINT_KEY`), so ``sample.py`` writes samples in data units and a
resumed run keeps the units its model learned, even if the file has changed since.

Log-likelihoods: the model is a density over ``z``, and ``train/nll``, ``val/nll`` and
``test/nll`` are nats per row of the standardised data (the space tabular benchmarks report:
MAF's POWER, GAS, ... are standardised). In data units ``-log p(x) = -log p(z) + sum_j log
std_j``: ``NLL_data = NLL_std + nll_offset()``; ``train.py`` also reports ``test/nll_data``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowgen.data.datasets import _npy_header, resolve_path
from flowgen.data.vectors import SPLITS, Points, VectorDataModule

__all__ = ["CHECKPOINT_KEY", "NpzVectorDataModule", "Standardisation", "inspect_vectors",
           "load_vectors"]

log = logging.getLogger(__name__)

KEYS = ("x_train", "x_val", "x_test")
#: Where a checkpoint keeps the statistics: Lightning stores ``datamodule.state_dict()`` under
#: the datamodule's class ``__qualname__``.
CHECKPOINT_KEY = "NpzVectorDataModule"
#: A column whose std is at most this fraction of its mean's size varies only in float32's last
#: bits (resolution ~6e-8): constant for a density model.
CONSTANT = 1e-6


@dataclass(frozen=True)
class Standardisation:
    """Per-feature ``mean`` and ``std`` ``[D]`` (float64): data -> model space ``(x - mean) /
    std`` and back."""

    mean: Tensor
    std: Tensor

    @property
    def dims(self) -> int:
        return len(self.mean)

    @property
    def log_scale(self) -> float:
        """``sum(log std)`` in nats: NLL in data units = NLL of the standardised data + this."""
        return float(self.std.log().sum())

    def forward(self, x: Tensor) -> Tensor:
        """Data ``[N, D]`` -> standardised float32 ``[N, D]``."""
        return ((x.double() - self.mean) / self.std).float()

    def inverse(self, z: Tensor) -> Tensor:
        """Standardised ``[N, D]`` -> data units, float64 ``[N, D]`` (non-finite values stay
        non-finite)."""
        return z.double().cpu() * self.std + self.mean

    def state(self) -> dict[str, list[float]]:
        """Plain lists: what a checkpoint read with ``weights_only=True`` may hold."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: object, where: str) -> Standardisation:
        """Back from :meth:`state`, checked (the file may come from anyone): one ``ValueError``
        naming ``where`` unless ``mean`` and ``std`` are equal-length lists of finite numbers,
        ``std > 0``."""
        try:
            mean, std = (torch.tensor(state[k], dtype=torch.float64) for k in ("mean", "std"))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where} is not a standardisation (mean and std lists): "
                             f"retrain, or pass the checkpoint train.py wrote") from err
        if mean.ndim != 1 or mean.shape != std.shape or not len(mean) or not (
                mean.isfinite().all() and std.isfinite().all() and (std > 0).all()):
            raise ValueError(f"{where} holds no valid statistics (mean {tuple(mean.shape)}, std "
                             f"{tuple(std.shape)}, need finite [D] with std > 0): retrain")
        return cls(mean, std)


def inspect_vectors(path: Path) -> tuple[int, dict[str, int]]:
    """Validate keys, dtypes and shapes from the headers only; return ``(D, rows per key)``."""
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path} (set data.path=/path/to/file.npz)")
    try:
        # Open the file ourselves: np.load leaks its handle when the archive is corrupt.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            found = sorted(npz.files)
            headers = {k: _npy_header(npz, k) for k in KEYS if k in found}
    except Exception as e:  # np.load fails in many ways (BadZipFile, EOF, a .npy given)
        raise ValueError(f"cannot read {path} as an .npz archive ({e!r}); regenerate it or "
                         f"point data.path at a valid file") from e
    if "x_train" not in headers or "x_test" not in headers:
        raise ValueError(f"{path} has keys {found}, need x_train and x_test (float [N, D]; "
                         f"x_val optional)")
    for key, (shape, dtype) in headers.items():
        if dtype.kind != "f":
            raise ValueError(f"{path}: {key} has dtype {dtype}, need floating-point features "
                             f"(save x.astype(np.float32); categories as numbers first)")
        if len(shape) != 2 or shape[1] == 0:
            fix = " (one feature: x[:, None])" if len(shape) == 1 else ""
            raise ValueError(f"{path}: {key} has shape {shape}, need [N, D] with D >= 1: one row "
                             f"per sample, one column per feature{fix}")
        if shape[1] != headers["x_train"][0][1]:
            raise ValueError(f"{path}: x_train has {headers['x_train'][0][1]} features per row "
                             f"but {key} has {shape[1]}: every split needs the same columns")
    return headers["x_train"][0][1], {k: shape[0] for k, (shape, _) in headers.items()}


def load_vectors(path: Path) -> dict[str, np.ndarray]:
    """The splits of a file :func:`inspect_vectors` accepted, float64 ``[N, D]`` each, every
    value finite (else one ``ValueError`` naming the first bad entry and the fix)."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = {k: npz[k].astype(np.float64) for k in KEYS if k in npz.files}
    except Exception as e:  # a corrupt member: the header read, the data does not
        raise ValueError(f"cannot read the arrays of {path} ({e!r}); regenerate the file") from e
    for key, x in arrays.items():
        bad = ~np.isfinite(x)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(f"{path}: {key} has {int(bad.sum())} non-finite values (first "
                             f"{key}[{row}, {col}] = {x[row, col]}); drop or impute those rows, "
                             f"e.g. x[np.isfinite(x).all(1)]")
    return arrays


def split_validation(x: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train rows, validation rows)``: ``round(fraction * N)`` rows drawn with ``seed``, the
    rest kept in file order."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = round(fraction * len(x))
    return x[np.sort(order[n_val:])], x[order[:n_val]]


def fit_standardisation(train: np.ndarray, path: Path) -> Standardisation:
    """The training rows' mean and std per feature; constant columns refused (see the module
    docstring)."""
    if len(train) < 2:
        raise ValueError(f"{path}: x_train leaves {len(train)} training row(s) after the "
                         f"validation split, too few to standardise: add rows")
    mean, std = train.mean(0), train.std(0)
    constant = np.flatnonzero(std <= CONSTANT * np.abs(mean))
    if len(constant):
        j = constant[0]
        raise ValueError(f"{path}: x_train column(s) {constant[:8].tolist()} are constant (column "
                         f"{j}: std {std[j]:.3g} about {mean[j]:.6g}): a density over a constant "
                         f"has no finite likelihood; drop them, e.g. x[:, x_train.std(0) > 0]")
    return Standardisation(torch.from_numpy(mean), torch.from_numpy(std))


class NpzVectorDataModule(VectorDataModule):
    """Rows of an ``.npz`` (see the module docstring) held in memory, standardised: batches
    ``(z float32 [B, D], labels [B] of zeros)``. The headers are checked here, so a bad file fails
    before the model is built; the values (finite, no constant column) at :meth:`setup`."""

    def __init__(self, path: str | Path, val_fraction: float = 0.1, seed: int = 0,
                 **loader_kwargs) -> None:
        super().__init__(**loader_kwargs)
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        self.path = resolve_path(path)
        self.dims, self.rows = inspect_vectors(self.path)
        self.val_fraction, self.seed = val_fraction, seed
        self.standardisation: Standardisation | None = None
        self._raw: dict[str, np.ndarray] | None = None  # data units, per split

    def setup(self, stage: str | None = None) -> None:
        if self._raw is not None:
            return
        arrays = load_vectors(self.path)
        if "x_val" in arrays:
            train, val = arrays["x_train"], arrays["x_val"]
        else:
            train, val = split_validation(arrays["x_train"], self.val_fraction, self.seed)
        self._raw = {"train": train, "val": val, "test": arrays["x_test"]}
        if self.standardisation is None:  # one restored from a checkpoint keeps its units
            self.standardisation = fit_standardisation(train, self.path)
        self._standardise()

    def _standardise(self) -> None:
        forward = self.standardisation.forward
        self.train_set, self.val_set, self.test_set = (
            Points(forward(torch.from_numpy(self._raw[split]))) for split in SPLITS)

    def data_points(self, split: str, n: int | None = None) -> Tensor:
        """The first ``n`` rows of ``split`` in data units, float64 ``[n, D]``."""
        self.points(split, n)  # checks the split, sets up
        return torch.from_numpy(self._raw[split][:n])

    def nll_offset(self) -> float:
        """Nats to add to an NLL of the standardised rows for the NLL in data units."""
        self.setup()
        return self.standardisation.log_scale

    def state_dict(self) -> dict[str, list[float]]:
        self.setup()
        return self.standardisation.state()

    def load_state_dict(self, state: dict) -> None:
        if not state:  # a checkpoint of another datamodule: the fresh statistics stand
            return
        saved = Standardisation.from_state(state, f"the checkpoint's statistics of {self.path}")
        if saved.dims != self.dims:
            raise ValueError(f"the checkpoint was trained on {saved.dims} features, {self.path} "
                             f"has {self.dims}: resume on the data it was trained on")
        current = self.standardisation
        if current is not None and not (torch.equal(current.mean, saved.mean)
                                        and torch.equal(current.std, saved.std)):
            log.warning("%s: the training rows' statistics differ from the checkpoint's (the "
                        "file changed): training goes on in the checkpoint's units", self.path)
        self.standardisation = saved
        if self._raw is not None:
            self._standardise()

    def _describe(self, split: str) -> tuple[str, str]:
        if split == "val" and self.val_set is not None and "x_val" not in self.rows:
            return (f"validation rows drawn from x_train of {self.path} (data.val_fraction="
                    f"{self.val_fraction})", "raise data.val_fraction or give the file an x_val "
                    "of at least {n} rows")
        key = f"x_{split}"
        after = " after the validation split" if split == "train" else ""
        return f"{key} of {self.path}{after}", f"give {key} at least {{n}} rows"
