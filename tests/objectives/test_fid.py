"""FID with the stand-in extractor: 0 for identical sets, large for data against noise, equal to
torchmetrics' own computation; with the FID Inception (random weights in its file format here,
the real file when FLOWGEN_INCEPTION_WEIGHTS names it) equal to torchmetrics' own FID; weights
files are read safely or refused in one line."""

from __future__ import annotations

import os

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

from flowgen.objectives.fid import (
    FID_WEIGHTS_FILE,
    InceptionFeatures,
    StandInFeatures,
    frechet_distance,
    inception_score,
)


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


@pytest.fixture(scope="module")
def random_fid_weights(tmp_path_factory):
    """A file in the FID Inception's format with random weights (its architecture built
    without loading anything): the whole Inception path, without the real weights."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    with pytest.MonkeyPatch.context() as patch:  # build the net; load nothing
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict",
                      lambda self, state: None)
        torch.manual_seed(0)
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    for module in net.modules():  # He init: the signal reaches the features (default: ~1e-8)
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("fid") / FID_WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


def torchmetrics_fid(path, real, fake) -> float:
    theirs = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path))
    theirs.update(real.expand(-1, 3, -1, -1), real=True)
    theirs.update(fake.expand(-1, 3, -1, -1), real=False)
    return float(theirs.compute())


def test_inception_features_are_torchmetrics_fid_features(random_fid_weights):
    """The features flowgen's FID reads = those of torchmetrics' ``FrechetInceptionDistance(
    feature=2048)`` given the same file (the same network and resizing); the arithmetic on them
    is torchmetrics' (test_equals_torchmetrics_own_computation), so the FIDs agree (the whole
    FID, 2048-d eigenproblems included, is the slow test below)."""
    images = digits(3, 5).expand(-1, 3, -1, -1)
    theirs = FrechetInceptionDistance(feature=2048,
                                      feature_extractor_weights_path=str(random_fid_weights))
    ours = InceptionFeatures(random_fid_weights)(images)
    assert ours.shape == (3, 2048) and ours.std() > 0
    torch.testing.assert_close(ours, theirs.inception(images), rtol=0, atol=0)


@pytest.mark.slow
def test_inception_fid_equals_torchmetrics_own_fid(random_fid_weights):
    """End to end: ~3 minutes on one CPU core (two 2048-d eigenproblems per FID)."""
    real, fake = digits(12, 5), digits(12, 6)
    ours = frechet_distance([real[:5], real[5:]], [fake], InceptionFeatures(random_fid_weights))
    assert ours == pytest.approx(torchmetrics_fid(random_fid_weights, real, fake), rel=1e-6)
    assert ours > 0


def test_only_the_fid_inception_is_accepted(tmp_path):
    from torchvision.models.inception import Inception3

    imagenet = tmp_path / "inception_v3_google.pth"
    torch.save(Inception3(init_weights=False).state_dict(), imagenet)
    with pytest.raises(ValueError, match="torchvision's ImageNet Inception-v3"):
        InceptionFeatures(imagenet)
    (tmp_path / "junk.pth").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a torch weights file.*inception_weights=<path>"):
        InceptionFeatures(tmp_path / "junk.pth")
    torch.save({"fc.weight": "a string"}, tmp_path / "strings.pth")
    with pytest.raises(ValueError, match="no state dict of tensors"):
        InceptionFeatures(tmp_path / "strings.pth")


def test_a_crafted_weights_file_cannot_run_code(tmp_path):
    """The file is read with ``weights_only=True`` before torch-fidelity sees anything."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"fc.weight": Payload()}))
    with pytest.raises(ValueError, match="not a torch weights file"):
        InceptionFeatures(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.skipif(not os.environ.get("FLOWGEN_INCEPTION_WEIGHTS"),
                    reason=f"set FLOWGEN_INCEPTION_WEIGHTS to the real {FID_WEIGHTS_FILE}")
def test_real_inception_fid_equals_torchmetrics_own_fid():
    path = os.environ["FLOWGEN_INCEPTION_WEIGHTS"]
    real, fake = digits(16, 7), digits(16, 8)
    ours = frechet_distance([real], [fake], InceptionFeatures(path))
    assert ours == pytest.approx(torchmetrics_fid(path, real, fake), rel=1e-6)


@pytest.mark.filterwarnings("ignore:std\\(\\)")  # one split: no std over splits
def test_inception_score_is_exp_mean_kl_of_the_fid_inception_logits(random_fid_weights,
                                                                     tmp_path):
    """splits=1: IS = exp(mean_x KL(p(y|x) || p(y))) over the network's softmax, by hand."""
    state = torch.load(random_fid_weights, weights_only=True)
    state["fc.weight"] = torch.randn(state["fc.weight"].shape,  # confident, varied classes
                                     generator=torch.Generator().manual_seed(1)) * 0.2
    weights = tmp_path / "sharp.pth"
    torch.save(state, weights)
    colours = torch.tensor([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0],
                            [0, 0, 255], [255, 255, 0]], dtype=torch.uint8)
    images = colours.view(6, 3, 1, 1).expand(-1, -1, 20, 20)  # as unlike as images get
    mean, std = inception_score([images[:4], images[4:]], weights, splits=1)
    logits = InceptionFeatures(weights, "logits_unbiased")(images).double()
    p_yx = logits.softmax(1)
    p_y = p_yx.mean(0, keepdim=True)
    kl = (p_yx * (p_yx.log() - p_y.log())).sum(1).mean()
    assert mean == pytest.approx(kl.exp().item(), rel=1e-5) and mean > 1.1
