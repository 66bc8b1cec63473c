"""Acceptance of the vector engine: ``python train.py data=two_moons model=coupling_mlp`` (batch
512, Adam 1e-3, 1,000 steps) ends within 0.06 nats of the two moons' own entropy on the test
split. About 2 minutes on 2 cores: ``make test-slow``."""

from __future__ import annotations

import pytest

from tests.conftest import compose_train


@pytest.mark.slow
def test_two_moons_coupling_mlp_reaches_the_entropy_floor(tmp_path):
    from flowgen.training import train

    cfg = compose_train(["data=two_moons", "model=coupling_mlp", "data.batch_size=512",
                         "trainer.max_steps=1000", "trainer.val_check_interval=500",
                         "trainer.limit_val_batches=1.0", "optim.warmup_steps=100",
                         "callbacks.density_panel=null"], tmp_path, shrink_model=False)
    metrics = train(cfg)
    assert metrics["step"] == 1000
    assert 0 < metrics["test/nll_gap"] < 0.06, metrics
