"""Every ``configs/data/*.yaml`` composes through the real ``train.yaml`` and instantiates offline
(torchvision datamodules only download in ``prepare_data``)."""

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from flowgen.config import CONFIG_DIR
from flowgen.data.datamodules import ImageDataModule
from tests.conftest import compose_train

EXPECTED = {  # name: (channels, image_size, hflip)
    "mnist5k": (1, 32, False),
    "npz": (1, 32, False),
    "mnist": (1, 32, False),
    "fashion_mnist": (1, 32, False),
    "cifar10": (3, 32, True),
    "svhn": (3, 32, False),
    "celeba": (3, 64, True),
    "imagefolder": (3, 64, False),
}


def test_every_data_config_is_covered():
    from flowgen.data.toys import TOYS  # the vector toys: tests/data/test_toys.py covers them

    # npz_vectors: tests/data/test_npz_vectors.py
    assert sorted(p.stem for p in (CONFIG_DIR / "data").glob("*.yaml")) == sorted(
        [*EXPECTED, *TOYS, "npz_vectors"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_data_config_instantiates(tmp_path, name):
    overrides = [f"data={name}"]
    if name == "npz":
        overrides.append(f"data.path={CONFIG_DIR.parent / 'data/mnist5k.npz'}")
    if name == "imagefolder":
        Image.fromarray(np.zeros((70, 90, 3), np.uint8)).save(tmp_path / "a.png")
        overrides.append(f"data.root={tmp_path}")
    cfg = compose_train(overrides, tmp_path)
    dm = instantiate(cfg.data)
    assert isinstance(dm, ImageDataModule)
    assert (dm.channels, dm.image_size, dm.hflip) == EXPECTED[name]
    if hasattr(dm, "root") and name != "imagefolder":
        assert dm.root.is_relative_to(CONFIG_DIR.parent / "data" / "torchvision")
