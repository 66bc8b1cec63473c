"""The task group: image_density (the default, today's behaviour) and density (vectors, NLL in
nats), each with its monitored metric and its pictures; memory as a training option."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from flowgen.objectives import Density, ImageDensity
from flowgen.training import FlowModule, build, train
from tests.conftest import compose_train

VECTORS = ["task=density", "data=two_moons", "data.n_train=256", "data.n_val=64",
           "data.n_test=64", "data.batch_size=32", "~model",
           f"+model._target_={__name__}.Gaussian", "callbacks.density_panel.n_samples=200",
           "callbacks.density_panel.resolution=16"]


class Gaussian(nn.Module):
    """A learned diagonal Gaussian on vectors: the smallest density model train() can build."""

    arch = "test_gaussian"

    def __init__(self, event_shape):
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.config = {"event_shape": list(event_shape)}
        self.loc = nn.Parameter(torch.zeros(event_shape))
        self.log_scale = nn.Parameter(torch.zeros(event_shape))

    def _normal(self):
        return torch.distributions.Normal(self.loc, self.log_scale.exp())

    def log_prob(self, x, cond=None):
        return self._normal().log_prob(x).flatten(1).sum(1)

    def sample(self, n, temperature=1.0, cond=None, generator=None):
        noise = torch.randn(n, *self.event_shape, generator=generator)
        return self.loc + temperature * self.log_scale.exp() * noise


def test_image_density_is_the_default_with_todays_checkpoint_name(tmp_path):
    cfg = compose_train([], tmp_path)
    assert cfg.callbacks.model_checkpoint.monitor == "val/bpd"
    assert cfg.callbacks.model_checkpoint.filename == "best-step{step}-bpd{val/bpd:.4f}"
    assert cfg.callbacks.sample_grid.n == 64 and "density_panel" not in cfg.callbacks
    objective = instantiate(cfg.task.objective)
    assert isinstance(objective, ImageDensity) and objective.n_bits == cfg.n_bits
    cfg = compose_train(["n_bits=5", "classifier_weight=0.5"], tmp_path)
    objective = instantiate(cfg.task.objective)  # the top-level keys users know still decide
    assert (objective.n_bits, objective.classifier_weight) == (5, 0.5)


def test_density_task_monitors_nll_and_draws_no_image_grid(tmp_path):
    cfg = compose_train(["task=density"], tmp_path)
    assert cfg.callbacks.model_checkpoint.monitor == "val/nll"
    assert cfg.callbacks.model_checkpoint.filename == "best-step{step}-nll{val/nll:.4f}"
    assert "sample_grid" not in cfg.callbacks
    assert cfg.callbacks.density_panel._target_.endswith("DensityPanel")
    assert isinstance(instantiate(cfg.task.objective), Density)


def test_vectors_train_on_nll_in_nats_with_their_picture(tmp_path):
    metrics = train(compose_train(VECTORS, tmp_path, shrink_model=False))
    assert metrics["step"] == 4 and "val/bpd" not in metrics
    # two moons (radius 2, noise 0.2) has an entropy near 2.3 nats: a Gaussian cannot go below it
    assert 1.5 < metrics["val/nll"] < 10 and math.isfinite(metrics["train/nll"])
    assert "-nll" in metrics["best_checkpoint"]
    assert sorted(p.name for p in (tmp_path / "out" / "density").iterdir()) == \
        ["density-step000002.png", "density-step000004.png"]
    ckpt = torch.load(metrics["last_checkpoint"], weights_only=True)
    assert ckpt["flowgen"]["n_bits"] is None  # no bit depth for vectors


def test_an_image_task_on_vector_data_fails_with_the_fix(tmp_path):
    cfg = compose_train(["task=image_density", *(v for v in VECTORS if not v.startswith(
        ("task=", "callbacks.density")))], tmp_path, shrink_model=False)
    with pytest.raises(ValueError, match=r"task=image_density needs images \[C, H, W\], but the "
                                         r"data gives samples of shape \[2\]: train them with "
                                         r"task=density"):
        build(cfg)


def test_memory_is_set_on_the_model_by_the_module(tmp_path):
    _, module, _ = build(compose_train(["memory=checkpoint"], tmp_path))
    modes = {m.memory for m in module.model.modules() if isinstance(getattr(m, "memory", None),
                                                                     str)}
    assert modes == {"checkpoint"}
    before = {id(m): m.memory for m in module.model.modules() if hasattr(m, "memory")}
    FlowModule(module.model)  # memory=None: the model keeps what it has
    assert before == {id(m): m.memory for m in module.model.modules() if hasattr(m, "memory")}


def test_channels_last_reaches_the_model_for_image_batches_only():
    seen = []

    class Spy(Gaussian):
        def log_prob(self, x, cond=None):
            seen.append(x.is_contiguous(memory_format=torch.channels_last) and x.dim() == 4)
            return super().log_prob(x, cond)

    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    for module, batch in ((FlowModule(Spy((3, 4, 4)), channels_last=True), (images, None)),
                          (FlowModule(Spy((2,)), objective=Density(), channels_last=True),
                           (torch.randn(2, 2), None))):
        module.log = lambda *args, **kwargs: None  # no trainer here
        module.training_step(batch, 0)
    assert seen == [True, False]
