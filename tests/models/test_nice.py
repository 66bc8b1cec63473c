"""A whole NICE against brute force, its logistic prior, sampling, checkpoints and training."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen.data import bits_per_dim
from flowgen.flows import AdditiveMLPCoupling, DiagonalScaling
from flowgen.models import MODELS, load_model, model_metadata
from flowgen.models.nice import NICE
from tests.conftest import perturb_, trained_like


def logistic(z: torch.Tensor) -> torch.Tensor:
    """Standard logistic log-density summed per sample: ``log(e^-z / (1 + e^-z)^2)``."""
    return (-z - 2 * torch.log1p(torch.exp(-z))).flatten(1).sum(1)


def test_nice_logdet_is_the_diagonal_scaling_alone():
    """Additive couplings preserve volume: only the diagonal scaling has a log-determinant
    (the brute-force checks are in tests/models/test_contract.py)."""
    model, x = trained_like(NICE, dict(event_shape=(1, 4, 4), couplings=4,
                                       hidden_features=16, hidden_layers=2))
    _, logdet = model(x[:2])
    scaling = next(m for m in model.modules() if isinstance(m, DiagonalScaling))
    torch.testing.assert_close(logdet, scaling.log_scale.sum().expand(2), rtol=0, atol=1e-10)


def test_nice_layout_follows_the_paper():
    model = NICE(event_shape=(1, 28, 28))
    couplings = [m for m in model.modules() if isinstance(m, AdditiveMLPCoupling)]
    assert [c.kept[0].item() for c in couplings] == [0, 1, 0, 1]
    widths = [m.out_features for m in couplings[0].net if isinstance(m, torch.nn.Linear)]
    assert widths == [1000] * 5 + [392]
    assert isinstance(model.transform.levels[0].flows[-1], DiagonalScaling)
    assert model.latent_shapes == [(1, 28, 28)] and model.num_dims == 784


def test_identity_nice_is_the_logistic_prior_on_pixels():
    model = NICE(event_shape=(1, 4, 4), hidden_features=8, hidden_layers=1).double()
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64) - 0.5
    torch.testing.assert_close(model.log_prob(x), logistic(x), rtol=0, atol=1e-12)
    bpd = bits_per_dim(model.log_prob(x), 16, 8)
    torch.testing.assert_close(bpd, -(logistic(x) - 16 * 8 * math.log(2)) / (16 * math.log(2)))


@pytest.mark.parametrize("prior, std", [("logistic", math.pi / math.sqrt(3)), ("gaussian", 1.0)])
def test_prior_noise_has_the_prior_distribution(prior, std):
    model = NICE(event_shape=(1, 4, 4), hidden_features=8, hidden_layers=1, prior=prior)
    z = model.prior_noise(4000, torch.Generator().manual_seed(0))[0]
    assert z.shape == (4000, 1, 4, 4) and torch.isfinite(z).all()
    assert abs(z.mean().item()) < 0.03 and abs(z.std().item() - std) < 0.03
    if prior == "logistic":  # the logistic CDF is the sigmoid
        assert abs((z < 1.0).float().mean().item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.01


def test_nice_sampling_temperature_and_generator():
    model = NICE(event_shape=(1, 8, 8), hidden_features=16, hidden_layers=2)
    perturb_(model, 0.05)
    x = model.eval().sample(5, temperature=0.7)
    assert x.shape == (5, 1, 8, 8) and torch.isfinite(x).all()
    cold = model.sample(3, temperature=0.0)
    torch.testing.assert_close(cold[0], cold[2])
    a = model.sample(2, temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = model.sample(2, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=-1.0)


def test_nice_rejects_an_unknown_prior():
    with pytest.raises(ValueError, match="prior must be one of"):
        NICE(prior="laplace", hidden_features=4, hidden_layers=1)


@pytest.mark.parametrize("prior", ["logistic", "gaussian"])
def test_nice_checkpoint_rebuild(tmp_path, prior):
    model = NICE(event_shape=(1, 4, 4), hidden_features=16, hidden_layers=2, prior=prior)
    perturb_(model, 0.1)
    x = torch.rand(3, 1, 4, 4) - 0.5
    assert MODELS["nice"] is NICE
    path = tmp_path / "nice.ckpt"
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "flowgen": model_metadata(model, 8)}, path)
    loaded, meta = load_model(path)
    assert meta["arch"] == "nice" and loaded.prior == prior
    torch.testing.assert_close(loaded.log_prob(x), model.eval().log_prob(x), rtol=0, atol=0)


def test_nice_config_builds_the_model():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from flowgen.config import CONFIG_DIR
    from flowgen.training.train import architecture_config

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=nice"])
    model = instantiate(architecture_config(cfg.model), event_shape=(1, 28, 28))
    assert isinstance(model, NICE) and model.prior == "logistic"
    assert model.config["hidden_features"] == 1000 and model.config["hidden_layers"] == 5
