"""A NaN/Inf step is skipped (no update, moments untouched), counted, and stops the run when
too many come in a row."""

from __future__ import annotations

import types

import lightning as L
import pytest
import torch

from flowgen.models import Glow, load_model
from flowgen.training import FlowModule, train
from flowgen.training.confined import BestCheckpoint
from flowgen.training.faults import NonFiniteStepGuard, TrainingDiverged
from tests.conftest import compose_train


class NaNAt(FlowModule):
    """Returns a NaN loss at the chosen global steps."""

    def __init__(self, nan_steps: set[int]):
        super().__init__(Glow((1, 8, 8), levels=2, steps=1, hidden_channels=4),
                         optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
        self.nan_steps = nan_steps
        self.snapshots: dict[int, dict] = {}

    def training_step(self, batch, batch_idx):
        self.snapshots[self.global_step] = {k: v.clone() for k, v in self.state_dict().items()}
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step in self.nan_steps else loss


def fit(module: FlowModule, steps: int, guard: NonFiniteStepGuard) -> L.Trainer:
    data = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.zeros(64, dtype=torch.long)), batch_size=8)
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, callbacks=[guard],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, loader)
    return trainer


def test_a_nan_step_is_skipped_and_counted():
    module, guard = NaNAt({2, 4}), NonFiniteStepGuard(max_consecutive=3)
    trainer = fit(module, 6, guard)
    assert trainer.global_step == 6 and guard.skipped == 2
    for bad in (2, 4):  # the weights after a NaN step are those before it
        for k, v in module.snapshots[bad].items():
            assert torch.equal(module.snapshots[bad + 1][k], v), k
    top_mean = "model.transform.top.prior.mean"
    assert not torch.equal(module.snapshots[1][top_mean],
                           module.snapshots[2][top_mean])  # good steps update
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert trainer.callback_metrics["train/skipped_steps"] == 2


def test_too_many_nan_steps_in_a_row_stop_the_run_with_advice():
    module, guard = NaNAt({3, 4, 5}), NonFiniteStepGuard(max_consecutive=3)
    with pytest.raises(TrainingDiverged, match=r"3 training steps in a row up to step 5.*"
                                           r"lower learning rate"):
        fit(module, 10, guard)
    assert all(torch.isfinite(p).all() for p in module.parameters())


class PoisonGradients(L.Callback):
    """From step ``start`` on, every gradient is NaN, as a diverged loss makes them."""

    def __init__(self, start: int):
        self.start = start

    def on_after_backward(self, trainer, pl_module):
        if trainer.global_step >= self.start:
            for p in pl_module.parameters():
                if p.grad is not None:
                    p.grad.fill_(float("nan"))


def test_a_run_stopped_by_the_guard_saves_a_finite_last_checkpoint_and_no_nan_best(tmp_path):
    cfg = compose_train(["trainer.max_steps=20", "trainer.val_check_interval=2",
                         "callbacks.sample_grid.n=4", "callbacks.nonfinite_guard.max_consecutive=3",
                         f"+callbacks.poison._target_={__name__}.PoisonGradients",
                         "+callbacks.poison.start=2"], tmp_path)
    with pytest.raises(TrainingDiverged, match="3 training steps in a row up to step 4"):
        train(cfg)
    last = tmp_path / "ckpt" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 5  # saved at the stop
    model, _ = load_model(last)  # refuses non-finite weights: these are the step-2 ones
    assert all(torch.isfinite(p).all() for p in model.parameters())
    best = [p.name for p in (tmp_path / "ckpt").glob("best-*")]
    assert len(best) == 1 and "nan" not in best[0] and "inf" not in best[0], best
    assert load_model(tmp_path / "ckpt" / best[0])[0] is not None  # finite, loadable


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_score_is_never_the_best(value, tmp_path):
    best = BestCheckpoint(dirpath=str(tmp_path), monitor="val/bpd")
    trainer = types.SimpleNamespace(global_step=3)
    assert best.check_monitor_top_k(trainer, torch.tensor(value)) is False
