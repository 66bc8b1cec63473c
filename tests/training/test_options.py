"""``check_train_config``: every shipped config passes, a bad value of each class (type, range,
choice, memory, devices) fails with one ValueError naming the key, the value and what is
allowed; and the spec checkers of ``flowgen.checks`` themselves."""

from __future__ import annotations

import inspect

import pytest
import torch

from flowgen.checks import Bool, Choice, Either, Int, ListOf, Real, Text, check, nullable, numbers
from flowgen.config import CONFIG_DIR
from flowgen.models.registry import MODELS
from flowgen.training.options import (
    FROM_DATA,
    MOVED,
    PREVIEW_IMAGES,
    TRAIN_BATCH_VALUES,
    check_train_config,
    model_options,
)
from tests.conftest import compose_train

NO_GPU = not torch.cuda.is_available()


def options_of(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def bad(tmp_path, *overrides: str, shrink_model: bool = True) -> str:
    cfg = compose_train(list(overrides), tmp_path, shrink_model=shrink_model)
    with pytest.raises(ValueError) as err:
        check_train_config(cfg)
    return str(err.value)


@pytest.mark.parametrize("override", [
    *(f"data={o}" for o in options_of("data") if o not in ("imagefolder", "npz", "npz_vectors")),
    "data=imagefolder data.root=/some/images", "data=npz data.path=/some/file.npz",
    "data=npz_vectors data.path=/some/file.npz",
    *(f"optim={o}" for o in options_of("optim")),
    *(f"trainer={o}" for o in options_of("trainer") if o in ("default", "cpu", "ddp_cpu")),
    *(f"experiment={o}" for o in options_of("experiment")),
    "callbacks.ema=null", "callbacks.sample_grid=null", "seed=null", "val_noise_seed=0",
    "task=density", "memory=checkpoint", "memory=invertible", "model.memory=store",
    "trainer.precision=bf16-mixed", "trainer.precision=64", "trainer.max_steps=-1",
    "trainer.val_check_interval=0.5 trainer.check_val_every_n_epoch=1",
])
def test_every_shipped_config_passes(override, tmp_path):
    experiment = override.startswith("experiment=")  # keep the experiment's own model
    check_train_config(compose_train(override.split(), tmp_path, shrink_model=not experiment))


@pytest.mark.parametrize("model", options_of("model"))
def test_every_model_config_passes(model, tmp_path):
    check_train_config(compose_train([f"model={model}"], tmp_path, shrink_model=False))


@pytest.mark.parametrize("overrides, message", [
    # wrong type
    (["trainer.max_steps=abc"], "trainer.max_steps must be an integer >= 1 or -1, got 'abc'"),
    (["model.hidden_channels=abc"], "model.hidden_channels must be an integer in 1..8192, got "
                                    "'abc'"),
    (["data.hflip=maybe"], "data.hflip must be true or false, got 'maybe'"),
    (["optim.optimizer.lr=fast"], "optim.optimizer.lr must be a finite number > 0, got 'fast'"),
    (["callbacks.sample_grid.temperature=warm"], "callbacks.sample_grid.temperature must be a "
                                                 "finite number >= 0, got 'warm'"),
    (["seed=abc"], "seed must be null or an integer in 0..4294967295, got 'abc'"),
    (["compile=1"], "compile must be true or false, got 1"),
    (["run_name=[a,b]"], "run_name must be a non-empty string, got ['a', 'b']"),
    # out of range
    (["trainer.max_steps=-5"], "trainer.max_steps must be an integer >= 1 or -1, got -5"),
    (["trainer.max_steps=0"], "got 0"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval must be null, an integer "
                                       ">= 1 or a number in (0, 1], got 0"),
    (["trainer.limit_val_batches=1.5"], "trainer.limit_val_batches must be null, a number in "
                                        "[0, 1] or an integer >= 0, got 1.5"),
    (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val must be null or a finite "
                                       "number >= 0, got -1"),
    (["model.steps=0"], "model.steps must be an integer in 1..1024, got 0"),
    (["model.num_classes=-1"], "model.num_classes must be an integer in 0..1048576, got -1"),
    (["data.batch_size=0"], "data.batch_size must be an integer >= 1, got 0"),
    (["data.num_workers=-1"], "data.num_workers must be an integer in 0.."),
    (["optim.optimizer.lr=-1"], "optim.optimizer.lr must be a finite number > 0, got -1"),
    (["optim.optimizer.lr=inf"], "got inf"),
    (["optim.warmup_steps=-1"], "optim.warmup_steps must be an integer >= 0, got -1"),
    (["+optim.optimizer.betas=[0.9,1.0]"], "optim.optimizer.betas must be a list of 2 values, "
                                           "each a number in [0, 1)"),
    (["callbacks.ema.decay=1"], "callbacks.ema.decay must be a number in [0, 1), got 1"),
    (["callbacks.ema.decay=2"], "got 2"),
    (["callbacks.sample_grid.n=0"], "callbacks.sample_grid.n must be an integer in 1..1024"),
    (["callbacks.last_checkpoint.every_n_train_steps=0"],
     "callbacks.last_checkpoint.every_n_train_steps must be an integer >= 1, got 0"),
    (["callbacks.nonfinite_guard.max_consecutive=0"], "max_consecutive must be an integer >= 1"),
    (["callbacks.model_checkpoint.save_top_k=-5"], "save_top_k must be an integer >= -1"),
    (["n_bits=9"], "n_bits must be an integer in 1..8, got 9"),
    (["n_bits=0"], "n_bits must be an integer in 1..8, got 0"),
    (["classifier_weight=-1"], "classifier_weight must be a finite number >= 0, got -1"),
    # a bad choice
    (["trainer.precision=17"], "trainer.precision must be null or one of 64|32|16|"),
    (["trainer.gradient_clip_algorithm=foo"], "must be null or one of norm|value, got 'foo'"),
    (["trainer.accelerator=tpux"], "trainer.accelerator must be one of auto|cpu|gpu|cuda|mps|tpu"),
    (["model.coupling=foo"], "model.coupling must be one of affine|additive|spline, got 'foo'"),
    (["memory=disk"], "memory must be one of store|checkpoint|invertible, got 'disk'"),
    (["model.memory=invertible"],
     "model.memory=invertible: memory is a training option now: memory=invertible"),
    (["task=density", "task.monitor=val/bpd"], "task.monitor=val/bpd is not logged by a task "
                                               "whose metric is nll: monitor val/nll"),
    (["task.objective=null"], "task.objective must be a config node"),
    (["callbacks.model_checkpoint.mode=avg"], "must be one of min|max, got 'avg'"),
    # too large for memory
    ([f"callbacks.sample_grid.n={PREVIEW_IMAGES + 1}"], "sample.py ckpt=... n=..."),
    (["model.hidden_channels=100000"], "model.hidden_channels must be an integer in 1..8192"),
    (["data=celeba", "data.batch_size=100000"], f"over the cap of {TRAIN_BATCH_VALUES:,}"),
    # an option the architecture does not have; a required value left unset
    (["+model.depth=3"], "model.depth is not an option of Glow: its options are levels, steps"),
    (["data=imagefolder"], "data.root is required: pass data.root=..."),
    # values that only conflict with each other or with this machine
    (["trainer.devices=0"], "trainer.devices must be auto, an integer >= 1, -1 or a list"),
    (["trainer.devices=-1", "trainer.accelerator=cpu"], "trainer.devices=-1 selects GPUs, but "
                                                        "this run trains on the CPU"),
    (["trainer.val_check_interval=0.5"], "trainer.val_check_interval=0.5 is a fraction of an "
                                         "epoch, but trainer.check_val_every_n_epoch=null"),
])
def test_bad_value_names_key_value_and_what_is_allowed(overrides, message, tmp_path):
    assert message in bad(tmp_path, *overrides)


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
@pytest.mark.parametrize("trainer", ["trainer.accelerator=gpu",
                                     "trainer=ddp trainer.accelerator=cuda"])
def test_gpu_without_a_gpu_says_so(trainer, tmp_path):
    # compose_train asks for the CPU: the accelerator is overridden after it
    message = bad(tmp_path, *trainer.split())
    assert message.startswith(f"{trainer.split()[-1]} but this machine has no ")
    assert "GPU that torch can use: train with trainer.accelerator=cpu" in message


def test_batch_cap_follows_the_image_size(tmp_path):
    per_image = 3 * 64 * 64  # celeba's default 64x64 RGB
    fits = TRAIN_BATCH_VALUES // per_image
    check_train_config(compose_train(["data=celeba", f"data.batch_size={fits}"], tmp_path))
    message = bad(tmp_path, "data=celeba", f"data.batch_size={fits + 1}")
    assert message.startswith(f"data.batch_size={fits + 1} needs") and "accumulate" in message
    check_train_config(compose_train(["data=celeba", "data.image_size=32",
                                      f"data.batch_size={fits + 1}"], tmp_path))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_constructor_option_has_a_typed_spec(name, tmp_path):
    cls = MODELS[name]
    params = [p for p in inspect.signature(cls.__init__).parameters
              if p not in ("self", *FROM_DATA, *MOVED)]  # memory: a training option now
    options = model_options(cls)
    assert sorted(options) == sorted(params)
    assert all(spec is not None for spec, _ in options.values())
    # each option refuses a value of the wrong type through the real config of that model
    for key, (spec, _) in options.items():
        wrong = "abc" if not isinstance(spec, Text) else "[1,2]"
        assert bad(tmp_path, f"model={name}", f"++model.{key}={wrong}", shrink_model=False) \
            .startswith(f"model.{key} must be ")


def test_spec_checkers():
    assert Int(1).allows(3) and not Int(1).allows(True) and not Int(1).allows(0)
    assert not Int(1).allows(2.0) and Int(-1, -1).what == "-1"
    assert Real(0, open_lo=True).allows(1e-9) and not Real(0, open_lo=True).allows(0)
    assert not Real().allows(float("nan")) and not Real().allows(float("inf"))
    assert not Real().allows(True) and Real(0, 1, open_hi=True).what == "a number in [0, 1)"
    assert Choice((16, "bf16")).allows(16) and not Choice((1,)).allows(True)
    assert not Choice(("a",)).allows("b") and Choice(("auto",)).what == "auto"
    assert Bool().allows(False) and not Bool().allows("true") and not Text().allows(" ")
    assert nullable(Int(0)).allows(None) and not Int(0).allows(None)
    assert ListOf(Int(0), 2, 2).allows([0, 1]) and not ListOf(Int(0), 2, 2).allows([0])
    assert Either(Int(1), Real(0, 1)).what == "an integer >= 1 or a number in [0, 1]"
    assert check("k", 5, Int(1)) == 5
    with pytest.raises(ValueError, match=r"^k must be an integer >= 1, got 0 \(why\)$"):
        check("k", 0, Int(1), "why")
    assert numbers("a", [1, 0.5], 0) == (1.0, 0.5)
    with pytest.raises(ValueError, match="a must be a list of finite numbers >= 0"):
        numbers("a", [1, -0.5], 0)


@pytest.mark.parametrize("args, key", [
    (["model=nsf_coupling", "model.bins=1"], "model.bins"),
    (["model=maf", "model.permutation=shuffle"], "model.permutation"),
    (["model=iaf", "model.tail_bound=0"], "model.tail_bound"),
    (["model=glow", "model.spline_bins=0"], "model.spline_bins"),
    (["model=realnvp", "model.coupling=additive"], "model.coupling"),
])
def test_vector_and_spline_options_are_ranged(args, key, tmp_path):
    assert bad(tmp_path, *args, shrink_model=False).startswith(f"{key} must be ")
