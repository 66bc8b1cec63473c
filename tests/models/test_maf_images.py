"""MAF on images (the MAF paper's MNIST and CIFAR-10 setups): pixels to logit space, one vector
of C*H*W entries; exact densities (so bits/dim), round trips, samples inside pixel space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowgen.models import MAF
from flowgen.training import train
from tests.conftest import compose_train


def small(**kwargs) -> MAF:
    torch.manual_seed(0)
    model = MAF(event_shape=(1, 3, 3), layers=2, hidden_features=12, hidden_layers=1,
                logit_alpha=0.05, **kwargs).double()
    for p in model.parameters():  # away from the identity start
        p.data.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("transform", ["affine", "spline"])
def test_log_prob_is_base_plus_the_whole_maps_log_determinant(transform):
    model = small(transform=transform)
    x = torch.rand(2, 1, 3, 3, dtype=torch.float64) - 0.5
    for xi, got in zip(x, model.log_prob(x), strict=True):
        jac = torch.autograd.functional.jacobian(
            lambda v: model.encode(v.view(1, 1, 3, 3))[0].reshape(-1), xi.reshape(-1))
        z = model.encode(xi[None])[0]
        expected = model.base.log_prob(z) + torch.linalg.slogdet(jac)[1]
        torch.testing.assert_close(got, expected[0], rtol=0, atol=1e-9)


def test_round_trip_and_samples_stay_in_pixel_space():
    model = small()
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64) - 0.5
    torch.testing.assert_close(model.decode(model.encode(x)), x, rtol=0, atol=1e-10)
    samples = model.sample(64, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (64, 1, 3, 3)
    # the logit's inverse is bounded: by 0.5 + alpha / (1 - 2 alpha) (sigmoid in (0, 1))
    bound = 0.5 + 0.05 / 0.9
    assert -bound < samples.min() and samples.max() < bound and samples.std() > 0.05


def test_logit_alpha_is_for_images_and_in_range():
    with pytest.raises(ValueError, match="logit_alpha is for images"):
        MAF(event_shape=(4,), logit_alpha=0.05)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 0.5\)"):
        MAF(event_shape=(1, 2, 2), logit_alpha=0.0)


def test_trains_on_the_default_images_and_samples_a_grid(tmp_path):
    """MAF on the embedded MNIST (1,024 pixels): finite bits/dim and a sample grid at
    validation (1,024 MADE passes per layer)."""
    metrics = train(compose_train(
        ["model=maf", "model.layers=2", "model.hidden_features=8", "model.hidden_layers=1",
         "model.logit_alpha=1e-6", "trainer.max_steps=2", "trainer.val_check_interval=2",
         "trainer.limit_val_batches=1", "callbacks.sample_grid.n=2",
         "callbacks.sample_grid.interpolation_steps=0"], tmp_path, shrink_model=False))
    assert np.isfinite(metrics["train/bpd"]) and np.isfinite(metrics["val/bpd"])
    assert list((tmp_path / "out" / "samples").glob("step*.png"))
