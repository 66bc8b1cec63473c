"""Sampling stays finite by design (issue 11, item 6): the affine coupling's inverse scale is
bounded (``coupling_scale=bounded``), and a checkpoint recorded before the option rebuilds the
unbounded ``sigmoid`` scale it was trained with."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from flowgen.diagnostics import first_amplifier, inverse_trace, sample_health
from flowgen.flows import AffineCoupling, Split
from flowgen.flows.coupling import BOUNDED_MIN_LOG_SCALE
from flowgen.models import Glow, build_model, load_model
from flowgen.sampling import sample_images
from tests.conftest import SHARED_DATASETS, compose_train


def coupling_driven_to(raw: float, scale: str) -> AffineCoupling:
    """A coupling whose net outputs shift 0 and raw log-scale ``raw`` everywhere (the state a
    latent the net never saw can drive it into)."""
    layer = AffineCoupling(4, hidden_channels=8, scale=scale)
    with torch.no_grad():
        layer.net[-1].conv.bias[2:] = raw
    return layer


def test_bounded_inverse_amplifies_at_most_e_to_the_bound():
    y = torch.ones(2, 4, 3, 3)
    for raw in (-1e3, -1e6):
        x, logdet = coupling_driven_to(raw, "bounded").inverse(y)
        assert torch.isfinite(x).all()
        gain = x[:, 2:].abs().max().item()
        assert gain == pytest.approx(torch.exp(torch.tensor(BOUNDED_MIN_LOG_SCALE)).item(),
                                     rel=1e-5)
        assert logdet.allclose(torch.full((2,), 18 * BOUNDED_MIN_LOG_SCALE))
    unbounded = coupling_driven_to(-1e3, "sigmoid").inverse(y)[0]
    assert not torch.isfinite(unbounded).all()  # what the bound prevents


def test_bounded_and_sigmoid_agree_where_the_sigmoid_is_far_from_the_floor():
    h = torch.linspace(-8, 6, 50).view(1, 1, 5, 10).repeat(1, 2, 1, 1)
    sig = coupling_driven_to(0.0, "sigmoid")._shift_logscale(h)[1]
    bounded = coupling_driven_to(0.0, "bounded")._shift_logscale(h)[1]
    # log(m + (1 - m) s) - log s lies in [log(1 - m), m / s]: small wherever s >> m
    floor = torch.exp(torch.tensor(-BOUNDED_MIN_LOG_SCALE))
    diff = bounded - sig
    assert (diff <= floor / sig.exp() + 1e-6).all()
    assert (diff >= torch.log1p(-floor) - 1e-6).all()
    assert (bounded > -BOUNDED_MIN_LOG_SCALE).all() and (bounded < 0).all()
    assert sig.min() < -BOUNDED_MIN_LOG_SCALE  # the range tested reaches below the floor


def test_a_config_without_coupling_scale_rebuilds_the_sigmoid_scale_exactly():
    old = dict(event_shape=[1, 8, 8], levels=2, steps=1, hidden_channels=8)
    model = build_model("glow", old)  # a checkpoint recorded before the option existed
    couplings = [m for m in model.modules() if isinstance(m, AffineCoupling)]
    assert couplings and all(c.scale_type == "sigmoid" for c in couplings)
    assert model.config["coupling_scale"] == "sigmoid"  # and new records say so
    h = torch.randn(2, 4, 3, 3) * 5
    torch.testing.assert_close(couplings[0]._shift_logscale(h)[1],
                               F.logsigmoid(h[:, 2:] + 2.0), rtol=0, atol=0)


def test_inverse_trace_names_the_layer_that_overflows():
    model = Glow(event_shape=(1, 8, 8), levels=2, steps=2, hidden_channels=8).eval()
    broken = [m for m in model.modules() if isinstance(m, AffineCoupling)][1]
    with torch.no_grad():
        broken.net[-1].conv.bias[broken.split:] = -200.0  # 1/sigmoid = e^198: inf
    zs = model.sample_latents(4, 0.7)
    stats = inverse_trace(model, zs)
    levels = model.transform.levels
    assert len(stats) == sum(len(level.flows) for level in levels) + 1  # + top prior
    worst = first_amplifier(stats)
    assert worst is not None and worst.layer == "AffineCoupling" and worst.nonfinite > 0
    assert (worst.level, worst.index) == (0, 6)  # level 0's second step's coupling
    assert torch.equal(~torch.isfinite(model.decode(zs)).flatten(1).all(1),
                       torch.ones(4, dtype=torch.bool))


MNIST = SHARED_DATASETS / "mnist.npz"


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not MNIST.is_file(), reason=f"needs the shared dataset {MNIST}")
def test_default_glow_on_real_mnist_samples_finitely(tmp_path, coupling_scale="bounded"):
    """The default model (configs/model/glow.yaml, default optimiser and callbacks, EMA on)
    trained 300 steps on MNIST at batch 16: 256 samples at T in {0.5, 0.7, 1.0} are finite
    (with ``coupling_scale=sigmoid`` most are not: 107 of 256 at T=0.7)."""
    from flowgen.training import train

    cfg = compose_train([f"model.coupling_scale={coupling_scale}", "data=npz",
                         f"data.path={MNIST}", "data.image_size=32", "data.batch_size=16",
                         "trainer.max_steps=300", "trainer.val_check_interval=300",
                         "trainer.limit_val_batches=4", "optim.warmup_steps=100"],
                        tmp_path, shrink_model=False)
    metrics = train(cfg)
    model, meta = load_model(metrics["last_checkpoint"])
    assert meta["ema"] and meta["config"]["coupling_scale"] == coupling_scale
    for t in (0.5, 0.7, 1.0):
        health = sample_health(sample_images(model, 256, t, seed=0))
        assert health.nonfinite == 0, (t, health, first_amplifier(
            inverse_trace(model, [t * z for z in model.sample_latents(16, 1.0)])))


def test_a_bounded_split_prior_scale_stays_below_its_bound_and_starts_at_one():
    """``split_scale=bounded``: an input unlike the data cannot make a split prior's scale
    explode (the e^30 a 300-step MNIST model reached), and the prior still starts as N(0, 1)."""
    split = Split(4, max_log_scale=2.0)
    h = torch.zeros(1, 2, 3, 3)
    z = torch.zeros(1, 2, 3, 3)
    # zero-initialised: N(0, 1)
    assert torch.allclose(split.prior.params(z, context=h)[1], torch.zeros(()))
    with torch.no_grad():
        split.prior.net.conv.bias.fill_(30.0)  # a raw log-scale of e^30
    log_scale = split.prior.params(z, context=h)[1]
    assert log_scale.max() <= math.log1p(math.exp(2.0)) + 1e-6
    with torch.no_grad():
        split.prior.net.conv.bias.fill_(-8.0)  # sharp priors (a constant background) keep theirs
    assert torch.allclose(split.prior.params(z, context=h)[1], torch.full((), -8.0), atol=0.15)
