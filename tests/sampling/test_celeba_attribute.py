"""``mode=manipulate attribute=<name>``: a CelebA attribute from ``list_attr_celeba.txt``, on a
tiny CelebA written in torchvision's on-disk format (nothing downloads)."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from PIL import Image

from flowgen.data import preprocess
from flowgen.models import Glow, model_metadata
from flowgen.sampling import load_checkpoint, parse_settings, run
from flowgen.sampling.edit import attribute_direction, encode_batched
from flowgen.sampling.interpolate import load_val_set
from tests.data.test_svhn_celeba import PARTITION, write_celeba
from tests.sampling.test_sample import ckpt, compose, grid_size  # noqa: F401 (fixture)

# The released header's 40 names, in order (the file ends the line with a space).
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses "
    "Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache "
    "Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young").split()
VALID = [i for i, p in enumerate(PARTITION) if p == 1]  # the "valid" split: validation here
SMILING = {VALID[1]}  # file rows with the attribute; every other row has -1
MALE = {VALID[0]}


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    """``(root, checkpoint)``: a tiny CelebA with the real attribute names, where of the two
    validation images only the second smiles and only the first is male, and an untrained
    16x16 RGB Glow."""
    root = tmp_path_factory.mktemp("celeba")
    write_celeba(root)
    rows = [f"{i + 1:06d}.jpg " + " ".join(
        "1" if (name == "Smiling" and i in SMILING) or (name == "Male" and i in MALE) else "-1"
        for name in CELEBA_ATTRIBUTES) for i in range(len(PARTITION))]
    (root / "celeba" / "list_attr_celeba.txt").write_text(
        "\n".join([str(len(rows)), " ".join(CELEBA_ATTRIBUTES) + " ", *rows]) + "\n")
    torch.manual_seed(0)
    model = Glow(event_shape=(3, 16, 16), levels=2, steps=1, hidden_channels=8)
    with torch.no_grad():
        model(torch.rand(8, 3, 16, 16) - 0.5)  # initialises ActNorm
    path = root / "run" / "last.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "flowgen": model_metadata(model, n_bits=8)}, path)
    return root, path


@pytest.fixture(autouse=True)
def _accept_synthetic_files(monkeypatch):
    # torchvision checks each file against the real release's md5 (see tests/data)
    monkeypatch.setattr(torchvision.datasets.celeba, "check_integrity", lambda *a, **k: True)


def celeba_cfg(celeba, *overrides: str):
    root, path = celeba
    return compose([f"ckpt={path}", "data=celeba", f"data.root={root}", "data.download=false",
                    "data.image_size=16", "mode=manipulate", *overrides])


def test_attribute_direction_is_the_mean_latent_with_minus_without(celeba):
    cfg = celeba_cfg(celeba, "attribute=Smiling")
    model, _ = load_checkpoint(parse_settings(cfg))
    val = load_val_set(cfg.data)
    zs = encode_batched(model, preprocess(torch.stack([val[i][0] for i in range(2)]), 8,
                                          noise=False), 64)
    smiling, n_with, n_without = attribute_direction(model, val, "Smiling", 8)
    assert (n_with, n_without) == (1, 1)
    male, _, _ = attribute_direction(model, val, "Male", 8)
    for level, z in enumerate(zs):  # validation image 1 smiles, image 0 is male
        torch.testing.assert_close(smiling[level], z[1] - z[0])
        torch.testing.assert_close(male[level], z[0] - z[1])
    assert smiling[0].abs().max() > 1e-2  # the two images do differ
    with pytest.raises(ValueError, match="none of the first 2 validation images has attribute "
                                         "Bald"):
        attribute_direction(model, val, "Bald", 8)


def test_manipulate_by_name_writes_the_grid_and_records_it(celeba, tmp_path):
    written = run(celeba_cfg(celeba, "attribute=Smiling", "indices=[0,1]", "alphas=[-1,0,1]",
                             f"out={tmp_path / 'a'}"))
    assert [p.name for p in written] == ["manipulate-Smiling-data-0-1.png", "settings.json"]
    with Image.open(written[0]) as im:
        assert im.size == grid_size(2 * 3, nrow=3, size=16) and im.mode == "RGB"
    settings = json.loads(written[-1].read_text())
    assert settings["attribute"] == "Smiling" and settings["attribute_column"] == 31
    assert settings["images_with_attribute"] == settings["images_without_attribute"] == 1
    assert settings["data_config"]["image_size"] == 16
    assert settings["data_config"]["eval_split"] == "valid"
    again = run(celeba_cfg(celeba, "attribute=Smiling", "indices=[0,1]", "alphas=[-1,0,1]",
                           f"out={tmp_path / 'b'}"))
    assert again[0].read_bytes() == written[0].read_bytes()  # same settings, same bytes
    male = run(celeba_cfg(celeba, "attribute=Male", "indices=[0,1]", "alphas=[-1,0,1]",
                          f"out={tmp_path / 'c'}"))
    assert male[0].read_bytes() != written[0].read_bytes()


def test_attribute_names_and_labels_must_fit_the_data(celeba, ckpt, tmp_path):  # noqa: F811
    names = ", ".join(CELEBA_ATTRIBUTES)
    for attribute, message in [("Smilling", f"unknown attribute 'Smilling': this data's "
                                            f"attributes are {names}$"),
                               ("3", "attribute=3 is a class label, but this data's images "
                                     "carry named attributes instead: give one of 5_o_Clock")]:
        with pytest.raises(ValueError, match=message) as err:
            run(celeba_cfg(celeba, f"attribute={attribute}", f"out={tmp_path / 'bad'}"))
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="attribute=Smiling is a name, but this data has class "
                                         "labels only"):
        run(compose([f"ckpt={ckpt}", "mode=manipulate", "attribute=Smiling",
                     f"out={tmp_path / 'bad'}"]))
    assert not (tmp_path / "bad").exists()
