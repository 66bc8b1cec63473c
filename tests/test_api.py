"""flowgen from Python: load_model, sample, to_images, save_pretrained/from_pretrained."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import flowgen
from flowgen.models import CouplingMLP, Glow
from tests.conftest import ROOT

CKPT = ROOT / "tests" / "fixtures" / "format1" / "glow.ckpt"


def samples(model, seed: int = 0):
    return model.sample(4, temperature=0.7, generator=torch.Generator().manual_seed(seed))


def test_load_model_sample_to_images_and_pretrained_round_trip(tmp_path):
    model = flowgen.load_model(CKPT)
    assert model.n_bits == 8 and not model.training
    images = flowgen.to_images(samples(model), model.n_bits)
    assert len(images) == 4 and images[0].size == (32, 32) and images[0].mode == "L"
    folder = model.save_pretrained(tmp_path / "glow")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    again = flowgen.from_pretrained(folder)
    assert again.n_bits == 8 and type(again) is type(model)
    assert torch.equal(samples(again), samples(model))  # same weights, same seed: same images


def test_vector_models_save_too(tmp_path):
    model = CouplingMLP((2,), couplings=2, hidden_features=4).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    flowgen.save_pretrained(model, tmp_path / "moons")
    again = flowgen.from_pretrained(tmp_path / "moons")
    x = torch.randn(5, 2)
    assert again.n_bits is None and torch.equal(again.log_prob(x), model.log_prob(x))


def test_to_images_reports_nonfinite_samples_as_red_tiles():
    x = torch.zeros(2, 1, 4, 4)
    x[1, 0, 0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="1 of 2 samples are non-finite"):
        images = flowgen.to_images(x)
    assert images[1].getpixel((2, 2)) == (255, 0, 0)
    with pytest.raises(ValueError, match="image samples"):
        flowgen.to_images(torch.zeros(3, 2))


@pytest.mark.parametrize("spoil, message", [
    (lambda d: (d / "config.json").unlink(), "not found"),
    (lambda d: (d / "config.json").write_text("{not json"), "not a flowgen model record"),
    (lambda d: (d / "config.json").write_text(json.dumps(
        {"arch": "os.system", "config": {}})), "unknown architecture"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\x80pickle"), "not a readable"),
    (lambda d: save_file({"transform.levels.0.flows.1.bias": torch.zeros(1)},
                         str(d / "model.safetensors")), "do not fit"),
])
def test_from_pretrained_refuses_a_bad_folder_with_one_line(tmp_path, spoil, message):
    folder = Glow((1, 8, 8), levels=2, steps=1, hidden_channels=4).save_pretrained(tmp_path / "m")
    spoil(folder)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        flowgen.from_pretrained(folder)


def test_from_pretrained_refuses_nonfinite_weights(tmp_path):
    model = Glow((1, 8, 8), levels=2, steps=1, hidden_channels=4)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    folder = model.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="non-finite weights"):
        flowgen.from_pretrained(folder)
