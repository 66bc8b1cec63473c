"""FID with the stand-in extractor: 0 for identical sets, large for data against noise, equal to
torchmetrics' own computation; Inception weights are read from a local file or refused."""

from __future__ import annotations

import os

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from flowgen.objectives.fid import InceptionFeatures, StandInFeatures, frechet_distance


def digits(n: int, seed: int) -> torch.Tensor:
    """Smooth blobs: a stand-in for data, uint8 [n, 1, 16, 16]."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, 1, 1, generator=g) * 8 + 4
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    blob = torch.exp(-((yy - centre[:, :1]) ** 2 + (xx - centre[:, 1:]) ** 2) / 8)
    return (blob * 255).round().to(torch.uint8)


def test_identical_sets_give_zero_and_noise_a_large_distance():
    features = StandInFeatures()
    real = digits(256, 0)
    same = frechet_distance([real[:128], real[128:]], [real], features)
    assert abs(same) < 1e-3
    other_draw = frechet_distance([real], [digits(256, 1)], features)
    noise = torch.randint(0, 256, (256, 1, 16, 16), generator=torch.Generator().manual_seed(2),
                          dtype=torch.uint8)
    far = frechet_distance([real], [noise], features)
    assert far > 20 * max(other_draw, 1e-3) and far > 0.1


def test_equals_torchmetrics_own_computation():
    features = StandInFeatures()
    real, fake = digits(200, 3), digits(200, 4)
    reference = FrechetInceptionDistance(feature=StandInFeatures(), normalize=False)
    reference.update(real.expand(-1, 3, -1, -1), real=True)
    reference.update(fake.expand(-1, 3, -1, -1), real=False)
    assert frechet_distance([real], [fake], features) == pytest.approx(
        float(reference.compute()), rel=1e-9)


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="uint8 images"):
        frechet_distance([torch.zeros(4, 1, 8, 8)], [torch.zeros(4, 1, 8, 8)], StandInFeatures())
    with pytest.raises(ValueError, match="at least 2 real"):
        frechet_distance([digits(1, 0)], [digits(4, 0)], StandInFeatures())
    with pytest.raises(FileNotFoundError, match="inception_weights=<path>"):
        InceptionFeatures(tmp_path / "missing.pth")


def test_inception_features_load_a_torchvision_state_dict(tmp_path):
    """The loading path without the real weights: a random Inception-v3 saved by torch."""
    from torchvision.models.inception import Inception3

    path = tmp_path / "inception.pth"
    torch.save(Inception3(init_weights=False).state_dict(), path)  # with AuxLogits, as shipped
    features = InceptionFeatures(path)
    assert features(digits(2, 0).expand(-1, 3, -1, -1)).shape == (2, 2048)


@pytest.mark.skipif(not os.environ.get("FLOWGEN_INCEPTION_WEIGHTS"),
                    reason="set FLOWGEN_INCEPTION_WEIGHTS to torchvision's Inception-v3 file")
def test_inception_features_from_a_local_file():
    features = InceptionFeatures(os.environ["FLOWGEN_INCEPTION_WEIGHTS"])
    assert features(digits(2, 0).expand(-1, 3, -1, -1)).shape == (2, 2048)
