"""EMA weights: the average itself, what checkpoints hold, resume, and sampling with them."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from flowgen.cli import exit_with_error, user_error
from flowgen.flows import ActNorm
from flowgen.models import Glow, load_model
from flowgen.models.realnvp import RealNVP
from flowgen.sampling import run
from flowgen.training import EMA, FlowModule, build
from tests.conftest import compose_train

BATCH = 8


class SeedEachStep(L.Callback):
    """The dequantisation noise of step ``t`` depends on ``t`` only: a resumed run draws what an
    uninterrupted one does."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.manual_seed(1000 + trainer.global_step)


class RecordWeights(L.Callback):
    """The trained weights and buffers after every optimiser step."""

    def __init__(self):
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


class SaveDuringValidation(L.Callback):
    """Saves ``path`` in the middle of the last validation, as a signal handler could."""

    def __init__(self, path, step: int):
        self.path, self.step = path, step

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.global_step == self.step and not trainer.sanity_checking:
            trainer.save_checkpoint(self.path)


def tiny_model(arch: str):
    torch.manual_seed(0)
    if arch == "glow":
        return Glow(event_shape=(1, 8, 8), levels=2, steps=1, hidden_channels=8)
    return RealNVP(event_shape=(1, 8, 8), levels=2, hidden_channels=8, res_blocks=1,
                   norm="batchnorm")


def loaders():
    """Two training batches per epoch, in a fixed order, and one validation batch."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3 * BATCH, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.zeros(len(images), dtype=torch.long)
    train = TensorDataset(images[:2 * BATCH], labels[:2 * BATCH])
    val = TensorDataset(images[2 * BATCH:], labels[2 * BATCH:])
    return DataLoader(train, batch_size=BATCH), DataLoader(val, batch_size=BATCH)


def fit(arch: str, ckpt_dir, max_steps: int, ema: EMA | None, callbacks=(), ckpt_path=None,
        val_every: int | None = None):
    """A tiny flow trained on CPU at a high learning rate (the weights move a lot per step),
    validated and checkpointed (``last.ckpt``) every ``val_every`` steps."""
    module = FlowModule(tiny_model(arch), val_noise_seed=0,
                        optimizer=lambda params: torch.optim.Adam(params, lr=1e-2))
    trainer = L.Trainer(
        accelerator="cpu", max_steps=max_steps, val_check_interval=val_every or max_steps,
        check_val_every_n_epoch=None, num_sanity_val_steps=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False, deterministic=True,
        callbacks=[SeedEachStep(), *([ema] if ema else []), *callbacks,
                   L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True)])
    train_loader, val_loader = loaders()
    trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
    return trainer


def hand_ema(steps: list[dict[str, torch.Tensor]], ema: EMA) -> dict[str, torch.Tensor]:
    """The EMA of the recorded weights, step by step: a copy first, then float tensors move
    ``1 - decay`` of the way to the new weights; integer and boolean buffers are copied."""
    average = {k: v.clone() for k, v in steps[0].items()}
    for n, weights in enumerate(steps[1:], start=1):
        decay = min(ema.decay, (1 + n) / (10 + n)) if ema.warmup else ema.decay
        for k, v in weights.items():
            average[k] = average[k] + (1 - decay) * (v - average[k]) \
                if v.is_floating_point() else v.clone()
    return average


def assert_states_equal(a: dict, b: dict, exact: bool = True) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if exact or not a[k].is_floating_point():
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7, msg=k)


@pytest.fixture(scope="module")
def glow_run(tmp_path_factory):
    """3 steps of a tiny Glow with EMA(decay=0.999, warmup): ``(dir, recorded weights, ema)``."""
    tmp = tmp_path_factory.mktemp("ema")
    ema, record = EMA(decay=0.999), RecordWeights()
    trainer = fit("glow", tmp, 3, ema, [record, SaveDuringValidation(tmp / "mid.ckpt", 3)])
    trainer.save_checkpoint(tmp / "after.ckpt")
    torch.save(trainer.lightning_module.state_dict(), tmp / "module_after_fit.pt")
    return tmp, record.steps, ema, trainer.callback_metrics["val/bpd"].item()


@pytest.mark.parametrize(("arch", "decay", "warmup"), [("realnvp", 0.9, False),
                                                       ("realnvp", 0.999, True)])
def test_ema_in_the_checkpoint_is_the_hand_computed_average(tmp_path, arch, decay, warmup):
    """Batch norm's running statistics are averaged like the weights; its counter is copied."""
    ema, record = EMA(decay=decay, warmup=warmup), RecordWeights()
    fit(arch, tmp_path, 3, ema, [record])
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=True)
    expected = hand_ema(record.steps, ema)
    assert_states_equal(ckpt["state_dict"], expected, exact=False)
    assert_states_equal(ckpt["current_model_state"], record.steps[-1])
    assert int(ckpt["averaging_state"]["n_averaged"]) == 3
    means = [k for k in expected if k.endswith("running_mean")]
    assert means and all(not torch.equal(expected[k], record.steps[-1][k]) for k in means)


def test_glow_ema_starts_from_the_actnorm_initialised_weights(glow_run):
    tmp, steps, ema, _ = glow_run
    ckpt = torch.load(tmp / "last.ckpt", weights_only=True)
    assert_states_equal(ckpt["state_dict"], hand_ema(steps, ema), exact=False)
    assert_states_equal(ckpt["current_model_state"], steps[-1])
    for state in (ckpt["state_dict"], ckpt["current_model_state"]):
        flags = [v for k, v in state.items() if k.endswith(".initialized")]
        assert flags and all(bool(f) for f in flags)
    # the EMA differs from the trained weights by about the last steps' moves
    assert not torch.equal(ckpt["state_dict"]["model.transform.levels.0.flows.1.bias"],
                           ckpt["current_model_state"]["model.transform.levels.0.flows.1.bias"])


def test_load_model_gives_ema_or_trained_weights(glow_run):
    tmp, steps, ema, _ = glow_run
    path = tmp / "last.ckpt"
    trained = {k[len("model."):]: v for k, v in steps[-1].items()}
    average = {k[len("model."):]: v for k, v in hand_ema(steps, ema).items()}
    for flag, expected, used in ((None, average, True), (True, average, True),
                                 (False, trained, False)):
        model, meta = load_model(path, ema=flag)
        assert meta["ema"] is used and meta["arch"] == "glow"
        assert_states_equal(model.state_dict(), expected, exact=not used)
        assert all(m.is_initialized for m in model.modules() if isinstance(m, ActNorm))


def test_validation_bpd_is_the_ema_weights_bpd(glow_run):
    """val/bpd is measured on the EMA weights, which load_model loads by default: evaluating the
    checkpoint gives the logged value; the trained weights give another."""
    tmp, _, _, logged = glow_run
    _, val_loader = loaders()

    def validate(ema: bool | None) -> float:
        model, _ = load_model(tmp / "last.ckpt", ema=ema)
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                            enable_model_summary=False)
        module = FlowModule(model, val_noise_seed=0)
        return trainer.validate(module, val_loader, verbose=False)[0]["val/bpd"]

    assert validate(None) == pytest.approx(logged, abs=1e-6)
    assert abs(validate(False) - logged) > 1e-4


def test_checkpoints_saved_during_validation_or_after_fit_keep_the_weights_apart(glow_run):
    """The module holds the EMA weights then (Lightning swaps them in); the checkpoint must still
    tell them from the trained ones."""
    tmp = glow_run[0]
    last = torch.load(tmp / "last.ckpt", weights_only=True)
    for name in ("mid.ckpt", "after.ckpt"):
        other = torch.load(tmp / name, weights_only=True)
        assert_states_equal(other["state_dict"], last["state_dict"])
        assert_states_equal(other["current_model_state"], last["current_model_state"])
    # after fit the module has the EMA weights, as with Lightning's own callback
    assert_states_equal(torch.load(tmp / "module_after_fit.pt", weights_only=True),
                        last["state_dict"])


def test_resume_restores_the_ema_exactly(tmp_path):
    """4 steps straight == 2 steps, then resumed from last.ckpt for 2 more: the same EMA, trained
    weights and update count, bit for bit."""
    straight = tmp_path / "straight"
    fit("glow", straight, 4, EMA(decay=0.9, warmup=False), val_every=2)
    resumed = tmp_path / "resumed"
    fit("glow", resumed, 2, EMA(decay=0.9, warmup=False), val_every=2)
    halfway = torch.load(resumed / "last.ckpt", weights_only=True)
    assert int(halfway["averaging_state"]["n_averaged"]) == 2
    fit("glow", resumed, 4, EMA(decay=0.9, warmup=False), val_every=2,
        ckpt_path=resumed / "last.ckpt")
    a = torch.load(straight / "last.ckpt", weights_only=True)
    b = torch.load(resumed / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 4
    assert_states_equal(a["state_dict"], b["state_dict"])
    assert_states_equal(a["current_model_state"], b["current_model_state"])
    assert_states_equal(a["averaging_state"], b["averaging_state"])
    assert not torch.equal(a["state_dict"]["model.transform.levels.0.flows.1.bias"],
                           halfway["state_dict"]["model.transform.levels.0.flows.1.bias"])


def sample(ckpt, out, *overrides: str) -> bytes:
    """``sample.py mode=grid n=4`` in this process; the grid's PNG bytes."""
    from hydra import compose, initialize_config_dir

    from flowgen.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("sample", overrides=["device=cpu", f"ckpt={ckpt}", "n=4", f"out={out}",
                                           *overrides])
    return run(cfg)[0].read_bytes()


def test_sample_py_uses_the_ema_weights_unless_ema_false(glow_run, tmp_path):
    ckpt = glow_run[0] / "last.ckpt"
    pictures = {flag: sample(ckpt, tmp_path / flag, f"ema={flag}")
                for flag in ("auto", "true", "false")}
    assert pictures["auto"] == pictures["true"] != pictures["false"]
    used = {flag: json.loads((tmp_path / flag / "settings.json").read_text())["ema"]
            for flag in pictures}
    assert used == {"auto": True, "true": True, "false": False}


def test_ema_true_on_a_checkpoint_without_ema_is_a_one_line_user_error(glow_run, tmp_path,
                                                                       capsys):
    ckpt = torch.load(glow_run[0] / "last.ckpt", weights_only=True)
    plain = tmp_path / "plain.ckpt"  # as trained with callbacks.ema=null
    torch.save({"state_dict": ckpt["current_model_state"], "flowgen": ckpt["flowgen"]}, plain)
    with pytest.raises(ValueError, match="has no EMA weights") as caught:
        sample(plain, tmp_path / "out", "ema=true")
    assert not (tmp_path / "out").exists()
    assert user_error(caught.value) is caught.value  # sample.py's path: one line, exit code 2
    with pytest.raises(SystemExit) as exited:
        exit_with_error(caught.value)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {plain} has no EMA weights") and err.count("\n") == 1
    sample(plain, tmp_path / "auto")  # auto falls back to the only weights there are
    assert json.loads((tmp_path / "auto" / "settings.json").read_text())["ema"] is False
    with pytest.raises(ValueError, match="ema must be auto, true or false, got 'yes'"):
        sample(plain, tmp_path / "bad", "ema=yes")


# Lightning warns that the EMA state and the other run's checkpoint folder are not taken over
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`:UserWarning")
@pytest.mark.filterwarnings("ignore:The dirpath has changed:UserWarning")
def test_resume_without_the_ema_callback_goes_on_from_the_trained_weights(glow_run, tmp_path):
    tmp, steps = glow_run[:2]
    probe = RecordWeights()
    fit("glow", tmp_path, 4, None, [probe], ckpt_path=tmp / "last.ckpt")
    assert len(probe.steps) == 1  # one step, from the trained weights of step 3
    trainer = fit("glow", tmp_path / "again", 3, None, ckpt_path=tmp / "last.ckpt")
    assert_states_equal(trainer.lightning_module.state_dict(), steps[-1])


def test_train_config_has_ema_on_and_null_turns_it_off(tmp_path):
    callbacks = build(compose_train([], tmp_path))[2].callbacks
    (ema,) = [c for c in callbacks if isinstance(c, EMA)]
    assert (ema.decay, ema.warmup) == (0.999, True)
    callbacks = build(compose_train(["callbacks.ema=null"], tmp_path))[2].callbacks
    assert not any(isinstance(c, EMA) for c in callbacks)


def test_decay_outside_0_1_is_a_clear_error():
    with pytest.raises(ValueError, match=r"ema decay must be in \[0, 1\]"):
        EMA(decay=1.5)
