"""The datamodule base class shared by every dataset, and the train-only flip augmentation.

Every train/val batch is ``(images, labels)`` with ``images`` uint8 ``[B, C, H, W]`` in 0..255 (not
scaled: the training module dequantizes on device) and ``labels`` int64 ``[B]``. ``channels`` and
``image_size`` are set in ``__init__`` because the model is built from them before ``setup`` runs.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sized

import lightning as L
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    default_collate,
)


class RandomHFlip:
    """Collate function: stack a batch, then mirror each image left-right with probability ``p``.

    Works on the uint8 ``[B, C, H, W]`` batch whatever the dataset (in-memory tensors included).
    Draws from ``generator`` if given, else from torch's global RNG, which Lightning's
    ``seed_everything`` seeds and DataLoader workers reseed each with their own seed.
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        self.p = p
        self.generator = generator

    def __call__(self, batch: list) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = default_collate(batch)
        flip = torch.rand(len(x), generator=self.generator) < self.p
        return torch.where(flip[:, None, None, None], x.flip(-1), x), y


class _EpochOrder:
    """Mixin for a shuffling sampler whose order is fixed by ``(seed, epoch)``: it can start
    ``start`` indices into the epoch (once: a new epoch starts from the beginning).

    Lightning calls ``set_epoch`` before every training epoch, so the order never depends on
    how many iterators were made, and a resumed run sees the same order as the original.
    """

    seed: int
    epoch: int
    start: int = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.start = 0
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)


class SeededRandomSampler(_EpochOrder, RandomSampler):
    """One process: a random permutation per epoch drawn from ``seed + epoch``."""

    def __init__(self, data_source: Sized, seed: int) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


class SeededDistributedSampler(_EpochOrder, DistributedSampler):
    """DDP: this rank's shard of the ``seed + epoch`` permutation (Lightning keeps a
    ``DistributedSampler`` as it is instead of replacing it with its own)."""


class ResumableLoader(DataLoader):
    """A training loader that Lightning checkpoints: ``state_dict`` holds the seed, the epoch and
    how many batches of it were handed out, and after ``load_state_dict`` the next iterator
    starts with the first batch not yet seen (the skipped ones are never loaded).

    Lightning saves and restores any train loader with ``state_dict``/``load_state_dict`` (its
    stateful-loader protocol) and, for a sized loader like this one, fetches no batch ahead, so
    the count is exactly the batches trained on. Needs an :class:`_EpochOrder` sampler and
    ``drop_last=True`` (whole batches).
    """

    sampler: _EpochOrder

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("generator", torch.Generator())  # Lightning may pass it when it rebuilds
        super().__init__(*args, **kwargs)
        self._served = 0

    @property
    def _resumable(self) -> bool:
        # false once Lightning has swapped in a sampler of its own (overfit_batches)
        return isinstance(self.sampler, _EpochOrder) and self.generator is not None

    def __iter__(self):
        if not self._resumable:
            yield from super().__iter__()
            return
        # Worker seeds are drawn from the loader's own generator, seeded per epoch: iterators
        # never draw from torch's global RNG, which the training steps' noise depends on.
        self.generator.manual_seed(self.sampler.seed + self.sampler.epoch)
        self._served = self.sampler.start // self.batch_size
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        if not self._resumable:
            return {}
        return {"seed": self.sampler.seed, "epoch": self.sampler.epoch, "batches": self._served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if not state or not self._resumable:
            return
        epoch, batches = state["epoch"], state["batches"]
        if batches >= len(self):  # saved after the epoch's last batch: the next one is due
            epoch, batches = epoch + 1, 0
        self.sampler.seed, self.sampler.epoch = state["seed"], epoch
        self.sampler.start = batches * self.batch_size


def train_sampler(dataset: Dataset, trainer) -> _EpochOrder:
    """The training order: shuffled by the run's seed (``seed_everything`` sets
    ``PL_GLOBAL_SEED``), split across ranks under DDP; resumable mid-epoch."""
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    if trainer is not None and trainer.world_size > 1:
        return SeededDistributedSampler(dataset, num_replicas=trainer.world_size,
                                        rank=trainer.global_rank, shuffle=True, seed=seed)
    return SeededRandomSampler(dataset, seed)


class ImageDataModule(L.LightningDataModule):
    """Loader logic shared by all datamodules; subclasses set ``channels``, ``image_size`` and
    assign ``self.train_set`` / ``self.val_set`` (datasets of ``(uint8 [C,H,W], int)``) in
    ``setup``.

    ``hflip`` mirrors training images at random (validation and test batches never are); it is
    what the Glow/RealNVP papers do on CIFAR-10 and CelebA, and wrong for digits. Validation uses
    the dataset's own held-out split; only :class:`ImageFolderDataModule`, which has none, splits
    off ``val_fraction`` of the images itself.

    The training order is a permutation per epoch drawn from ``seed + epoch`` (``seed``: the
    run's seed, which ``seed_everything`` puts in ``PL_GLOBAL_SEED``, else 0, as Lightning's own
    ``DistributedSampler`` does) and the loader is resumable (:class:`ResumableLoader`): a run
    resumed mid-epoch continues with exactly the batches the original would have seen.
    """

    channels: int
    image_size: int

    def __init__(
        self,
        batch_size: int = 64,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        hflip: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.hflip = hflip
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    @property
    def event_shape(self) -> tuple[int, int, int]:
        """The shape of one sample, ``(C, H, W)``: models are built from it."""
        return (self.channels, self.image_size, self.image_size)

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for loaders")
        options = dict(num_workers=self.num_workers, pin_memory=self.pin_memory,
                       persistent_workers=self.num_workers > 0)
        if not train:
            # Its own generator: a validation iterator draws no worker seed from the global RNG,
            # whose stream (the training noise) must not depend on when validation runs.
            return DataLoader(dataset, batch_size=self.val_batch_size,
                              generator=torch.Generator(), **options)
        return ResumableLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=self._train_sampler(dataset),
            drop_last=True,  # a ragged last batch would give a noisy, over-weighted step
            collate_fn=RandomHFlip() if self.hflip else None,
            **options,
        )

    def _train_sampler(self, dataset: Dataset) -> _EpochOrder:
        return train_sampler(dataset, self.trainer)

    def check_splits(self, num_replicas: int = 1) -> None:
        """Set up and raise ``ValueError`` when a split cannot give training or validation a
        batch (``num_replicas`` processes each load ``batch_size`` images per step).

        Training takes whole batches only (``drop_last``) and a distributed sampler gives each
        process ``ceil(n / num_replicas)`` images (padding by repeats), so fewer than
        ``batch_size`` per process would train for 0 steps and exit as if it had finished.
        Validation pads the same way, so it needs one image in all.
        """
        self.setup("fit")
        n_train, n_val = len(self.train_set), len(self.val_set)
        per_process = -(-n_train // num_replicas)
        if per_process < self.batch_size:
            what, grow = self.describe_split(train=True)
            batch = f"data.batch_size={self.batch_size}"
            if num_replicas > 1:
                batch += f" per process ({num_replicas} processes get {per_process} each)"
            fit = n_train // num_replicas
            fix = (f"lower data.batch_size to {fit} or {grow}" if fit
                   else f"use fewer devices or {grow}" if n_train else grow)
            raise ValueError(f"the {what} has {n_train} images, fewer than one batch of "
                             f"{batch}: training would make 0 steps; {fix}")
        if n_val == 0:
            what, grow = self.describe_split(train=False)
            raise ValueError(f"the {what} has no images, so val/bpd (which picks the best "
                             f"checkpoint) could never be measured; {grow}")

    def describe_split(self, train: bool) -> tuple[str, str]:
        """(what the split is, how to make it larger) for :meth:`check_splits`' messages."""
        return ("training split" if train else "validation split", "add images")

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
