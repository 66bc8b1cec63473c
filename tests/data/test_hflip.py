"""The ``hflip`` option: random mirroring of training batches only, for every datamodule."""

import numpy as np
import pytest
import torch

from flowgen.data.datamodules import NpzDataModule, RandomHFlip


@pytest.fixture
def distinct_npz(tmp_path):
    """8 random 5x5 RGB images (none its own mirror), labelled by their index."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 5, 5, 3), dtype=np.uint8)
    path = tmp_path / "distinct.npz"
    np.savez(path, x_train=x, x_test=x, y_train=np.arange(8), y_test=np.arange(8))
    return path, torch.from_numpy(x).permute(0, 3, 1, 2)


def count_flips(loader, images: torch.Tensor, epochs: int) -> tuple[int, int]:
    """(kept, mirrored) counts; fails if an item is neither its image nor the mirror of it."""
    kept = mirrored = 0
    for _ in range(epochs):
        for x, y in loader:
            assert x.dtype == torch.uint8 and y.dtype == torch.int64
            for xi, yi in zip(x, y, strict=True):
                if torch.equal(xi, images[yi]):
                    kept += 1
                else:
                    assert torch.equal(xi, images[yi].flip(-1)), f"image {yi} is corrupted"
                    mirrored += 1
    return kept, mirrored


def test_hflip_mirrors_train_batches_only(distinct_npz):
    path, images = distinct_npz
    dm = NpzDataModule(path, batch_size=4, hflip=True)
    dm.setup()
    torch.manual_seed(0)
    kept, mirrored = count_flips(dm.train_dataloader(), images, epochs=10)
    assert kept + mirrored == 80
    assert 20 < mirrored < 60  # p = 0.5 per image: 40 expected, std 4.5
    kept, mirrored = count_flips(dm.val_dataloader(), images, epochs=3)
    assert (kept, mirrored) == (24, 0)
    assert isinstance(dm.train_dataloader().collate_fn, RandomHFlip)
    assert not isinstance(dm.val_dataloader().collate_fn, RandomHFlip)


def test_no_hflip_by_default(distinct_npz):
    path, images = distinct_npz
    dm = NpzDataModule(path, batch_size=4)
    assert dm.hflip is False
    dm.setup()
    assert count_flips(dm.train_dataloader(), images, epochs=5) == (40, 0)


def test_random_hflip_collate():
    batch = [(torch.arange(12, dtype=torch.uint8).view(1, 3, 4) + i, i) for i in range(64)]
    x0 = torch.stack([b[0] for b in batch])

    def run(p, seed):
        return RandomHFlip(p, generator=torch.Generator().manual_seed(seed))(batch)

    x, y = run(0.5, seed=1)
    assert x.dtype == torch.uint8 and torch.equal(y, torch.arange(64))
    flipped = (x != x0).flatten(1).any(1)
    assert torch.equal(x[flipped], x0[flipped].flip(-1)) and torch.equal(x[~flipped], x0[~flipped])
    assert 0 < flipped.sum() < 64  # per image, not per batch
    assert torch.equal(run(0.5, seed=1)[0], x)  # the generator makes it reproducible
    assert not torch.equal(run(0.5, seed=2)[0], x)
    assert torch.equal(run(0.0, seed=1)[0], x0)
    assert torch.equal(run(1.0, seed=1)[0], x0.flip(-1))
