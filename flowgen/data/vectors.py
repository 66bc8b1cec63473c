"""The vector datamodules' shared loading (:class:`VectorDataModule`) and the 2-D toys'
(:class:`ToyDataModule`, :mod:`flowgen.data.toys`: train/val/test drawn from a seed); users' own
``.npz`` tables build on it in :mod:`flowgen.data.npz_vectors`.

Every batch is ``(x, labels)`` with ``x`` float32 ``[B, D]`` and ``labels`` int64 ``[B]`` of zeros:
the same ``(data, label)`` tuple as image batches, so one training loop reads both. The training
loader is the images' :class:`~flowgen.data.base.ResumableLoader` with the same seeded per-epoch
order, so a resumed run sees exactly the batches the original would have.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from flowgen.data.base import ResumableLoader, train_sampler
from flowgen.data.toys import TOYS, mc_entropy

__all__ = ["SPLITS", "Points", "ToyDataModule", "VectorDataModule"]

SPLITS = ("train", "val", "test")


class Points(Dataset):
    """``n`` points ``[n, D]`` held in memory, each with label 0. ``__getitems__`` indexes a whole
    batch at once (the DataLoader then skips B single-item fetches and a stack)."""

    def __init__(self, x: Tensor) -> None:
        self.x = x
        self.labels = torch.zeros(len(x), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i], self.labels[i]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices, dtype=torch.int64)
        return self.x[index], self.labels[index]


def batched(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate function for :meth:`Points.__getitems__`, which already returns the batch
    (module level: DataLoader workers pickle it)."""
    return batch


def split_seed(seed: int, split: str) -> int:
    """A seed of its own per (``seed``, split): the splits are independent streams, and no two
    ``(seed, split)`` pairs share one (as ``seed + index`` would for seed 0's test and seed 2's
    train)."""
    return int(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split),)).generate_state(1)[0])



class VectorDataModule(L.LightningDataModule):
    """Loader logic shared by the vector datamodules: subclasses set ``dims`` (``D``) in
    ``__init__`` (the model is built from :attr:`event_shape` before ``setup`` runs) and assign
    ``train_set``/``val_set``/``test_set`` (:class:`Points`, ``[N, D]`` float32 in the space the
    model sees) in ``setup``; ``_describe(split)`` names a split and how to make it larger."""

    dims: int

    def __init__(self, batch_size: int = 512, val_batch_size: int | None = None,
                 num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.train_set: Points | None = None
        self.val_set: Points | None = None
        self.test_set: Points | None = None

    @property
    def event_shape(self) -> tuple[int]:
        """The shape of one sample, ``(D,)``: models are built from it."""
        return (self.dims,)

    def points(self, split: str, n: int | None = None) -> Tensor:
        """The first ``n`` points ``[n, D]`` of ``split`` (all of them when ``n`` is None or
        larger), as the model sees them; the same ones every call."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.setup()
        return getattr(self, f"{split}_set").x[:n]

    def data_points(self, split: str, n: int | None = None) -> Tensor:
        """The first ``n`` points of ``split`` in the data's own units ``[n, D]``: here the
        points themselves (a subclass that transforms its data undoes that)."""
        return self.points(split, n)

    def check_splits(self, num_replicas: int = 1) -> None:
        """Set up and raise ``ValueError`` when a split cannot serve ``num_replicas`` processes:
        training needs a whole batch per process (``drop_last``: fewer would train for 0 steps),
        validation and test one point per process."""
        self.setup("fit")
        n_train = len(self.train_set)
        if -(-n_train // num_replicas) < self.batch_size:
            what, grow = self._describe("train")
            fit = n_train // num_replicas
            fix = grow.format(n=self.batch_size * num_replicas)
            if fit:
                fix += f" or lower data.batch_size to {fit}"
            raise ValueError(f"the {what} has {n_train} points, fewer than one batch of "
                             f"data.batch_size={self.batch_size} for each of {num_replicas} "
                             f"process(es): training would make 0 steps; {fix}")
        for split in ("val", "test"):
            n = len(getattr(self, f"{split}_set"))
            if n < num_replicas:
                what, grow = self._describe(split)
                raise ValueError(f"the {what} has {n} points, fewer than the {num_replicas} "
                                 f"process(es) evaluating it; {grow.format(n=num_replicas)}")

    def _describe(self, split: str) -> tuple[str, str]:
        """(what ``split`` is, how to make it hold at least ``{n}`` points: a format string)."""
        raise NotImplementedError

    def describe_split(self, train: bool) -> tuple[str, str]:
        """(what the split is, how to make it larger), as the image datamodules say it."""
        what, grow = self._describe("train" if train else "val")
        return what, grow.split(" to at least")[0]

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def _loader(self, dataset: Points | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for "
                               f"loaders")
        options = dict(num_workers=self.num_workers, pin_memory=self.pin_memory,
                       persistent_workers=self.num_workers > 0, collate_fn=batched)
        if not train:
            # its own generator: evaluation draws nothing from the global RNG (the training noise)
            return DataLoader(dataset, batch_size=self.val_batch_size,
                              generator=torch.Generator(), **options)
        # the order follows the run's seed (as for images), resumable mid-epoch
        return ResumableLoader(dataset, batch_size=self.batch_size, drop_last=True,
                               sampler=train_sampler(dataset, self.trainer), **options)


class ToyDataModule(VectorDataModule):
    """A 2-D toy from :data:`~flowgen.data.toys.TOYS`: ``n_train``/``n_val``/``n_test`` i.i.d.
    points, each split drawn from its own stream of ``seed`` (``data.seed``, not the run's seed:
    the data stay the same when only the model's seed changes).

    :meth:`entropy` is the Monte Carlo entropy of the true density over the test split, so
    ``test NLL - entropy`` estimates KL(data || model) with the test points' sampling noise
    cancelled (both averages run over the same points); None where the density is not known.
    """

    dims = 2

    def __init__(self, name: str, n_train: int = 50_000, n_val: int = 5_000,
                 n_test: int = 20_000, seed: int = 0, **loader_kwargs) -> None:
        super().__init__(**loader_kwargs)
        if name not in TOYS:
            raise ValueError(f"unknown toy data {name!r}; choose one of {', '.join(TOYS)}")
        sizes = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
        for key, n in sizes.items():
            if n < 0:
                raise ValueError(f"data.{key} must be >= 0, got {n}")
        self.name, self.toy, self.sizes, self.seed = name, TOYS[name], sizes, seed
        self._entropy: tuple[float, float] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            sets = [Points(self.toy.sample(self.sizes[f"n_{split}"], torch.Generator().manual_seed(
                split_seed(self.seed, split)))) for split in SPLITS]
            self.train_set, self.val_set, self.test_set = sets

    def entropy_estimate(self) -> tuple[float, float] | None:
        """(entropy in nats, Monte Carlo standard error) over the test split; cached. None when
        the toy's density is unknown."""
        if not self.toy.has_density:
            return None
        if self._entropy is None:
            self._entropy = mc_entropy(self.toy.log_prob(self.points("test")))
        return self._entropy

    def entropy(self) -> float | None:
        """The data's entropy in nats (the floor of the test NLL), or None when unknown."""
        estimate = self.entropy_estimate()
        return None if estimate is None else estimate[0]

    def _describe(self, split: str) -> tuple[str, str]:
        return f"{split} split of {self.name}", f"raise data.n_{split} to at least {{n}}"
