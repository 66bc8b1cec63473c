"""Every user-facing option of ``train.py`` checked (types and ranges) before anything is built
or written, so a bad value fails at once with one line naming the key and the fix.

The options are a table (dotted key -> spec, hint); a key that is absent (a config group without
it, a callback turned off with ``callbacks.<name>=null``) is skipped, null only where the spec
says so. Model options are typed from each architecture's constructor signature, ranged below.
"""

from __future__ import annotations

import os
from typing import get_args

from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT
from lightning.pytorch.strategies import StrategyRegistry
from omegaconf import DictConfig

from flowgen.checks import (
    SEED_MAX,
    Bool,
    Choice,
    Either,
    Int,
    ListOf,
    Real,
    Text,
    check_cap,
    is_int,
    nullable,
    plain,
)
from flowgen.flows.memory import MEMORY_MODES
from flowgen.training.fid_monitor import OPTIONS as FID_OPTIONS
from flowgen.training.fid_monitor import check_fid_options
from flowgen.training.model_options import (  # noqa: F401  (re-exported)
    FROM_DATA,
    MOVED,
    check_model,
    model_options,
)
from flowgen.training.option_table import check_table
from flowgen.training.trainer_checks import check_devices, check_validation_interval

#: Images of one training batch, in values (2**26 float32: 256 MB before any activation).
TRAIN_BATCH_VALUES = 2**26
#: A sample grid (or interpolation strip) made at every validation: a preview, not a data set.
PREVIEW_IMAGES = 1024
SEED = Int(0, SEED_MAX)
COUNT = Either(Int(1), Int(-1, -1))  # -1: no limit
FRACTION_OR_BATCHES = Either(Real(0, 1), Int(0))


class _Node:
    """A config node with a ``_target_`` (e.g. a strategy object): Hydra instantiates it."""
    what = "a config node"

    def allows(self, value) -> bool:
        return isinstance(value, DictConfig) and "_target_" in value


def _precisions() -> tuple:
    """Lightning's own list (ints 16/32/64 and strings like bf16-mixed)."""
    flat = [a for t in get_args(_PRECISION_INPUT) for a in get_args(t)]
    return tuple(dict.fromkeys(flat))


OPTIONS: dict[str, tuple[object, str]] = {
    # top level
    "run_name": (Text(numbers=True), "e.g. run_name=mnist-small"),
    "seed": (nullable(SEED), ""),
    "n_bits": (Int(1, 8), "8 for ordinary images (5 for CelebA-style setups)"),
    "ckpt_path": (nullable(Text()), "a checkpoint path or last"),
    "start_over": (Bool(), ""),
    "val_noise_seed": (nullable(SEED), "null draws fresh noise each validation"),
    "classifier_weight": (Real(0), "e.g. 0.01 for a class-conditional Glow"),
    "channels_last": (Bool(), ""),
    "compile": (Bool(), ""),
    "memory": (Choice(MEMORY_MODES), "what training keeps for backward"),
    "progress_every_n_steps": (Int(1), "steps per progress line when stdout is no terminal"),
    "trainer.enable_progress_bar": (Bool(), ""),
    # task (configs/task/): the objective, its metric and the monitored key
    "task.objective": (_Node(), "choose a task: task=image_density or task=density"),
    "task.metric": (Text(), "the objective's metric, e.g. bpd or nll"),
    "task.monitor": (Text(), "e.g. val/bpd"),
    # trainer: what Lightning 2.6's Trainer accepts, refused before it is built
    "trainer.accelerator": (Choice(("auto", "cpu", "gpu", "cuda", "mps", "tpu")), ""),
    "trainer.strategy": (Either(Choice(("auto", *StrategyRegistry.available_strategies())),
                                _Node()), ""),
    "trainer.devices": (Either(Choice(("auto",)), COUNT, ListOf(Int(0), example="[0,1]")),
                        "-1: every GPU; a list: those GPUs"),
    "trainer.num_nodes": (Int(1), ""),
    "trainer.precision": (nullable(Choice(_precisions())), "e.g. 32-true or bf16-mixed"),
    "trainer.max_steps": (COUNT, "-1: no limit, then max_epochs stops the run"),
    "trainer.max_epochs": (nullable(COUNT), "-1: no limit"),
    "trainer.min_steps": (nullable(Int(0)), ""),
    "trainer.min_epochs": (nullable(Int(0)), ""),
    "trainer.val_check_interval": (nullable(Either(Int(1), Real(0, 1, open_lo=True))),
                                   "validate every N training steps, e.g. 500"),
    "trainer.check_val_every_n_epoch": (nullable(Int(1)), ""),
    "trainer.limit_val_batches": (nullable(FRACTION_OR_BATCHES),
                                  "a fraction of the split or a number of batches"),
    "trainer.limit_train_batches": (nullable(FRACTION_OR_BATCHES), ""),
    "trainer.overfit_batches": (FRACTION_OR_BATCHES, ""),
    "trainer.num_sanity_val_steps": (nullable(Int(-1)), ""),
    "trainer.fast_dev_run": (Either(Bool(), Int(0)), ""),
    "trainer.gradient_clip_val": (nullable(Real(0)), "0 or null: no clipping"),
    "trainer.gradient_clip_algorithm": (nullable(Choice(("norm", "value"))), ""),
    "trainer.accumulate_grad_batches": (Int(1), ""),
    "trainer.log_every_n_steps": (nullable(Int(1)), ""),
    "trainer.deterministic": (nullable(Either(Bool(), Choice(("warn",)))), ""),
    **{f"trainer.{k}": (nullable(Bool()), "") for k in (
        "benchmark", "inference_mode", "detect_anomaly", "sync_batchnorm", "barebones",
        "use_distributed_sampler", "enable_progress_bar", "enable_model_summary",
        "enable_checkpointing")},
    # data: the loader options every datamodule takes, and the per-dataset ones
    "data.batch_size": (Int(1), "images per device and step, e.g. 64"),
    "data.val_batch_size": (nullable(Int(1)), "null: data.batch_size"),
    "data.num_workers": (Int(0, 4 * (os.cpu_count() or 1)),
                         "0 loads in the main process; more workers than 4 per CPU core only "
                         "cost memory"),
    "data.pin_memory": (Bool(), ""),
    "data.hflip": (Bool(), ""),
    "data.image_size": (nullable(Int(1)), ""),
    "data.channels": (nullable(Int(1)), "1 (greyscale) or 3 (RGB)"),
    "data.val_fraction": (Real(0, 1, open_hi=True), ""),
    "data.seed": (SEED, ""),
    "data.download": (Bool(), ""),
    "data.eval_split": (Choice(("valid", "test")), ""),
    "data.path": (Text(), "data.path=/path/to/file.npz"),
    "data.root": (Text(), "data.root=/path/to/images"),
    # optim
    "optim.optimizer.lr": (Real(0, open_lo=True), "e.g. optim.optimizer.lr=1e-3"),
    "optim.optimizer.betas": (ListOf(Real(0, 1, open_hi=True), 2, 2, "[0.9,0.999]"), ""),
    "optim.optimizer.eps": (Real(0), "e.g. 1e-8"),
    "optim.optimizer.weight_decay": (Real(0), ""),
    "optim.optimizer.momentum": (Real(0), ""),
    "optim.warmup_steps": (Int(0), "0: no warm-up"),
    # callbacks (configs/callbacks/default.yaml)
    "callbacks.model_checkpoint.save_top_k": (Int(-1), "-1 keeps every best checkpoint"),
    "callbacks.model_checkpoint.mode": (Choice(("min", "max")), ""),
    "callbacks.model_checkpoint.monitor": (nullable(Text()), "e.g. val/bpd"),
    "callbacks.last_checkpoint.every_n_train_steps": (Int(1), "a crash loses fewer steps"),
    "callbacks.sample_grid.n": (Int(1, PREVIEW_IMAGES),
                                "for more samples use sample.py ckpt=... n=..."),
    "callbacks.sample_grid.temperature": (Real(0), "typically 0.5-1.0"),
    "callbacks.sample_grid.seed": (SEED, ""),
    "callbacks.sample_grid.interpolation_steps": (Int(0, PREVIEW_IMAGES), "0: no strip"),
    "callbacks.density_panel.n_samples": (Int(1, 2**20), "e.g. 20000"),
    "callbacks.density_panel.every_n_validations": (Int(1), "1: after every validation"),
    "callbacks.density_panel.resolution": (Int(2, 2048), "grid pixels per side, e.g. 200"),
    "callbacks.lr_monitor.logging_interval": (nullable(Choice(("step", "epoch"))), ""),
    "callbacks.nonfinite_guard.max_consecutive": (Int(1), "e.g. 20"),
    "callbacks.ema.decay": (Real(0, 1, open_hi=True),
                            "typically 0.999-0.9999 (1 would never move off the first "
                            "weights); callbacks.ema=null turns the average off"),
    "callbacks.ema.warmup": (Bool(), ""),
}


def check_batch_memory(cfg: DictConfig) -> None:
    """A batch's image values under :data:`TRAIN_BATCH_VALUES`, where the config gives the image
    size (``data.channels`` or 3)."""
    data = cfg.get("data")
    if not isinstance(data, DictConfig) or not is_int(data.get("image_size")):
        return
    per_image = (data.get("channels") or 3) * data.image_size ** 2
    for key in ("batch_size", "val_batch_size"):
        size = data.get(key)
        if is_int(size):
            check_cap(f"data.{key}", size, size * per_image, TRAIN_BATCH_VALUES,
                      f"image values per batch ({per_image:,} per image)",
                      f"lower data.{key} (trainer.accumulate_grad_batches=k trains on k batches "
                      f"per step without the memory)")


def check_moved(cfg: DictConfig) -> None:
    """An old command line's ``model.memory=<mode>``: refused, naming the key to use now. (The
    value ``store``, the old default an architecture config may still carry, is ignored.)"""
    node = cfg.get("model")
    for old, new in MOVED.items():
        value = node.get(old, "store") if isinstance(node, DictConfig) else "store"
        if value != "store":
            raise ValueError(f"model.{old}={plain(value)}: {old} is a training option now: "
                             f"{new}={plain(value)}")


def check_task(cfg: DictConfig) -> None:
    """The best checkpoint monitors a metric the task's objective logs."""
    task = cfg.get("task")
    if not isinstance(task, DictConfig) or not {"metric", "monitor"} <= set(task):
        return
    stage, _, metric = str(task.monitor).partition("/")
    if stage not in ("train", "val") or metric != task.metric:
        raise ValueError(f"task.monitor={task.monitor} is not logged by a task whose metric is "
                         f"{task.metric}: monitor val/{task.metric} (or train/{task.metric})")


def check_train_config(cfg: DictConfig) -> None:
    """Raise ``ValueError`` naming the first bad option of a composed train config: its key,
    the value, what is allowed and how to fix it. Builds and writes nothing."""
    check_moved(cfg)
    check_table(cfg, OPTIONS)
    check_table(cfg, FID_OPTIONS)
    check_fid_options(cfg)
    check_task(cfg)
    check_model(cfg)
    check_devices(cfg)
    check_validation_interval(cfg)
    check_batch_memory(cfg)
