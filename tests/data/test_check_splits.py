"""check_splits: refused exactly when the real training loader would give a process zero batches,
or validation no image; the message names the split, its size, the batch and the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from flowgen.data.base import SeededDistributedSampler
from flowgen.data.datamodules import ImageFolderDataModule, NpzDataModule


def npz(tmp_path, n_train: int, n_test: int = 2):
    path = tmp_path / f"x{n_train}-{n_test}.npz"
    np.savez(path, x_train=np.zeros((n_train, 4, 4), np.uint8),
             x_test=np.zeros((n_test, 4, 4), np.uint8))
    return path


def batches_per_process(dm: NpzDataModule, replicas: int) -> list[int]:
    """What each process's real training loader yields (the samplers training uses)."""
    dm.setup()
    if replicas == 1:
        return [len(dm.train_dataloader())]
    return [len(DataLoader(dm.train_set, batch_size=dm.batch_size, drop_last=True,
                           sampler=SeededDistributedSampler(dm.train_set, num_replicas=replicas,
                                                            rank=r, seed=0)))
            for r in range(replicas)]


@pytest.mark.parametrize("replicas", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 2, 4, 5])
@pytest.mark.parametrize("n_train", [1, 3, 4, 7, 8])
def test_refused_exactly_when_a_process_gets_no_batch(tmp_path, n_train, batch_size, replicas):
    path = npz(tmp_path, n_train)
    zero = min(batches_per_process(NpzDataModule(path, batch_size=batch_size), replicas)) == 0
    dm = NpzDataModule(path, batch_size=batch_size)
    if not zero:
        dm.check_splits(replicas)
        return
    with pytest.raises(ValueError) as err:
        dm.check_splits(replicas)
    message = str(err.value)
    assert message.startswith(f"the x_train of {path} has {n_train} images, fewer than one "
                              f"batch of data.batch_size={batch_size}"), message
    assert "training would make 0 steps" in message and "add images to x_train" in message
    fit = n_train // replicas
    if fit:  # the batch size it suggests really gives every process a batch
        assert f"lower data.batch_size to {fit} " in message
        assert min(batches_per_process(NpzDataModule(path, batch_size=fit), replicas)) > 0
    else:
        assert "use fewer devices" in message


def test_messages_name_the_processes(tmp_path):
    with pytest.raises(ValueError, match=re.escape("data.batch_size=4 per process (2 processes "
                                                   "get 3 each): training would make 0 steps; "
                                                   "lower data.batch_size to 3")):
        NpzDataModule(npz(tmp_path, 6), batch_size=4).check_splits(2)


def folder(tmp_path, n: int):
    for i in range(n):
        Image.new("L", (4, 4), i).save(tmp_path / f"{i}.png")
    return tmp_path


def test_image_folder_without_validation_images(tmp_path):
    root = folder(tmp_path, 4)
    dm = ImageFolderDataModule(root, image_size=4, val_fraction=0, batch_size=2)
    with pytest.raises(ValueError, match=re.escape(
            f"the validation split of {root} (data.val_fraction=0 of 4 images) has no images, "
            f"so val/bpd (which picks the best checkpoint) could never be measured; raise "
            f"data.val_fraction above 0")):
        dm.check_splits()
    ImageFolderDataModule(root, image_size=4, val_fraction=0.25, batch_size=2).check_splits()


def test_image_folder_of_one_image(tmp_path):
    root = folder(tmp_path, 1)
    with pytest.raises(ValueError, match=re.escape(
            f"the training split of {root} (data.val_fraction=0.1 of 1 images held out) has 1 "
            f"images, fewer than one batch of data.batch_size=2: training would make 0 steps; "
            f"lower data.batch_size to 1 or add images or lower data.val_fraction")):
        ImageFolderDataModule(root, image_size=4, batch_size=2).check_splits()
    # batch 1 trains, but the one image cannot also validate
    with pytest.raises(ValueError, match=r"validation split .* has no images.*; add images"):
        ImageFolderDataModule(root, image_size=4, batch_size=1).check_splits()


def test_check_splits_sets_up_once(tmp_path):
    dm = NpzDataModule(npz(tmp_path, 4), batch_size=2)
    dm.check_splits()
    train_set = dm.train_set
    dm.setup("fit")  # what Lightning does next keeps the checked datasets
    assert dm.train_set is train_set and len(dm.val_set) == 2
