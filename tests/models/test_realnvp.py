"""A whole RealNVP against brute force, its prior, sampling, checkpoints, batch-norm statistics
and a few training steps."""

from __future__ import annotations

import pytest
import torch

from flowgen.flows import (
    ActNorm,
    BatchNormFlow,
    ChannelMaskedCoupling,
    CheckerboardCoupling,
    LearnedPrior,
    Split,
    Squeeze,
)
from flowgen.models import MODELS, load_model, model_metadata
from flowgen.models.realnvp import RealNVP
from tests.conftest import brute_force_logabsdet, perturb_, trained_like


def test_batchnorm_train_mode_uses_batch_statistics_and_their_jacobian():
    layer = BatchNormFlow(3, momentum=0.1).double()
    perturb_(layer)
    x = torch.randn(4, 3, 2, 3, dtype=torch.float64) * 2 + 1
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), keepdim=True, unbiased=False)
    y, logdet = layer.train()(x)
    mult = torch.exp(layer.log_gamma) / torch.sqrt(var + layer.eps)
    torch.testing.assert_close(y, (x - mean) * mult + layer.beta, rtol=0, atol=1e-12)
    # per sample: the Jacobian of the affine map with the batch statistics held constant
    frozen = brute_force_logabsdet(lambda v: (v - mean) * mult + layer.beta, x)
    torch.testing.assert_close(logdet, frozen, rtol=0, atol=1e-10)
    # the first batch sets the running statistics, later ones move them by `momentum`
    torch.testing.assert_close(layer.running_mean, mean)
    torch.testing.assert_close(layer.running_var, var)
    x2 = torch.randn(4, 3, 2, 3, dtype=torch.float64)
    layer(x2)
    torch.testing.assert_close(layer.running_mean, 0.9 * mean + 0.1 * x2.mean((0, 2, 3), True))
    assert int(layer.num_batches_tracked) == 2
    # eval mode: running statistics, exact inverse
    layer.eval()
    y, logdet = layer(x)
    x_back, logdet_inv = layer.inverse(y)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(logdet, -logdet_inv, rtol=0, atol=0)


def test_realnvp_layout_follows_the_paper():
    model = RealNVP(event_shape=(3, 32, 32), levels=3, hidden_channels=8, res_blocks=1)
    assert model.latent_shapes == [(6, 16, 16), (12, 8, 8), (12, 8, 8)]
    first, top = model.transform.levels[0].flows, model.transform.levels[-1].flows
    kinds = [type(f) for f in first]
    assert kinds == [CheckerboardCoupling, BatchNormFlow] * 3 + [Squeeze] + \
        [ChannelMaskedCoupling, BatchNormFlow] * 3 + [Split]
    assert [f.parity for f in first if hasattr(f, "parity")] == [0, 1, 0, 0, 1, 0]
    assert [type(f) for f in top] == [CheckerboardCoupling, BatchNormFlow] * 4
    assert all(s.prior.net is None for s in model.modules() if isinstance(s, Split))
    learned = RealNVP(event_shape=(1, 28, 28), levels=3, hidden_channels=8, res_blocks=1,
                      norm="actnorm", prior="learned")
    assert learned.latent_shapes == [(2, 14, 14), (4, 7, 7), (4, 7, 7)]
    assert isinstance(learned.transform.levels[-1].flows[-1], LearnedPrior)
    assert not any(isinstance(m, BatchNormFlow) for m in learned.modules())
    assert sum(isinstance(m, ActNorm) for m in learned.modules()) == 2 * 6 + 4


def test_realnvp_starts_as_the_identity():
    model = RealNVP(event_shape=(1, 4, 4), levels=1, hidden_channels=4, res_blocks=1,
                    norm="actnorm").double().eval()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64) - 0.5
    zs, logdet = model(x)
    torch.testing.assert_close(zs[0], x, rtol=0, atol=0)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model.log_prob(x), expected)


@pytest.mark.parametrize("kwargs, message", [
    (dict(event_shape=(3, 12, 12), levels=4), r"levels<=3"),
    (dict(event_shape=(3, 8, 8), levels=4), r"levels<=3"),
    (dict(norm="layernorm"), "norm must be one of"),
    (dict(prior="laplace"), "prior must be one of"),
])
def test_realnvp_rejects_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RealNVP(**{"hidden_channels": 4, "res_blocks": 1, **kwargs})


def test_realnvp_sampling():
    model = RealNVP(event_shape=(3, 8, 8), levels=2, hidden_channels=8, res_blocks=1)
    model.train()
    model(torch.rand(4, 3, 8, 8) - 0.5)
    perturb_(model, 0.05)
    x = model.eval().sample(5, temperature=0.7)
    assert x.shape == (5, 3, 8, 8) and torch.isfinite(x).all()


@pytest.mark.parametrize("norm", ["batchnorm", "actnorm"])
def test_realnvp_checkpoint_rebuild(tmp_path, norm):
    model, x = trained_like(RealNVP, dict(event_shape=(1, 8, 8), levels=2,
                                          hidden_channels=8, res_blocks=1, norm=norm))
    model = model.float()
    x = x.float()
    assert MODELS["realnvp"] is RealNVP
    path = tmp_path / "realnvp.ckpt"
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "flowgen": model_metadata(model, 5)}, path)
    loaded, meta = load_model(path)
    assert meta["arch"] == "realnvp" and meta["n_bits"] == 5 and not loaded.training
    torch.testing.assert_close(loaded.log_prob(x), model.log_prob(x), rtol=0, atol=0)


def test_realnvp_config_builds_the_model():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from flowgen.config import CONFIG_DIR
    from flowgen.training.train import architecture_config

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=realnvp"])
    model = instantiate(architecture_config(cfg.model), event_shape=(1, 28, 28))
    assert isinstance(model, RealNVP) and model.config["norm"] == "batchnorm"
    assert model.latent_shapes[-1] == (4, 7, 7)
