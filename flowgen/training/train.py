"""``train(cfg)``: everything ``train.py`` does, callable from tests with a composed config."""

from __future__ import annotations

import logging

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from flowgen.config import check_run_name
from flowgen.objectives import ImageDensity
from flowgen.perf import keep_freed_memory
from flowgen.training.ddp_safety import fork_safe_ranks
from flowgen.training.loggers import build_loggers
from flowgen.training.module import FlowModule
from flowgen.training.options import check_train_config
from flowgen.training.progress import with_progress_bar
from flowgen.training.resume import RandomState
from flowgen.training.resume_checks import check_resume, resolve_ckpt_path, training_record
from flowgen.training.run_dir import claim_run

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, FlowModule, L.Trainer]:
    """Instantiate datamodule, model (sized from the data's event shape), the task's objective
    and trainer, with every callback (the task's pictures among them), from a composed config."""
    datamodule = instantiate(cfg.data)
    # _convert_: plain lists, not ListConfig, so the model records its arguments as given
    model = instantiate(architecture_config(cfg.model), event_shape=list(datamodule.event_shape),
                        _convert_="all")
    task = cfg.get("task")
    objective = instantiate(task.objective) if task is not None else None
    _check_task_fits_data(objective, tuple(datamodule.event_shape))
    module = FlowModule(model, optimizer=instantiate(cfg.optim.optimizer), objective=objective,
                        warmup_steps=cfg.optim.warmup_steps,
                        val_noise_seed=cfg.get("val_noise_seed"),
                        channels_last=cfg.get("channels_last", False),
                        compile=cfg.get("compile", False), memory=cfg.get("memory"),
                        training_record=training_record(cfg))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    callbacks.append(RandomState())  # not optional: without it a resumed run draws other noise
    # tqdm on a terminal, a plain line every 100 steps in a SLURM log or a pipe
    callbacks = with_progress_bar(callbacks, cfg.trainer.get("enable_progress_bar"),
                                  cfg.get("progress_every_n_steps", 100))
    loggers = build_loggers(cfg)  # one W&B run, one metrics.csv across resumes
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, module, trainer


def _check_task_fits_data(objective, event_shape: tuple[int, ...]) -> None:
    """Pixels are dequantised, vectors are not: the wrong pairing fails here with the fix."""
    if isinstance(objective, ImageDensity) and len(event_shape) != 3:
        raise ValueError(f"task=image_density needs images [C, H, W], but the data gives "
                         f"samples of shape {list(event_shape)}: train them with task=density")


def architecture_config(node: DictConfig) -> DictConfig:
    """The model node without ``memory``: a training option now (top-level ``memory``, which
    :func:`check_train_config` reconciles with an old ``model.memory``)."""
    if "memory" not in node:
        return node
    return OmegaConf.masked_copy(node, [k for k in node if k != "memory"])


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Fit the model; return the final metrics (``train/bpd``, ``val/bpd`` or the task's
    metric, ...), the number of
    steps and the checkpoint paths.

    Every check runs before anything of the run is written: the options, the data, the model,
    the checkpoint to resume from against this config, then the run's folders (see
    :func:`~flowgen.training.run_dir.claim_run`)."""
    check_train_config(cfg)
    check_run_name(cfg.run_name)
    keep_freed_memory()  # a training step re-allocates the same buffers: see bench/speed.py
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule, module, trainer = build(cfg)
    fork_safe_ranks(trainer)  # forked DDP ranks must not hang on the parent's OpenMP pool
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.checkpoint_dir)
    if ckpt_path is not None:
        check_resume(ckpt_path, module, cfg)
    datamodule.check_splits(trainer.world_size)
    with claim_run(cfg, ckpt_path, is_main=rank_zero_only.rank == 0):
        return _fit(cfg, datamodule, module, trainer, ckpt_path)


def test_against_entropy(trainer: L.Trainer, module: FlowModule,
                         datamodule: L.LightningDataModule) -> dict[str, float]:
    """The test NLL of the trained model, for vector data that can say more about it, logged
    and returned (nats): data that knows its own entropy (the 2-D toys) adds ``test/entropy``
    and the gap to that floor ``test/nll_gap``; standardised data (``data=npz_vectors``) adds
    ``test/nll_data``, the NLL in the data's own units. ``{}`` for other data."""
    entropy = datamodule.entropy() if hasattr(datamodule, "entropy") else None
    offset = datamodule.nll_offset() if hasattr(datamodule, "nll_offset") else None
    if entropy is None and offset is None:
        return {}
    (results,) = trainer.test(module, datamodule=datamodule, verbose=False, weights_only=True)
    metric = f"test/{module.objective.metric}"
    value = float(results[metric])
    floor = {metric: value}
    if entropy is not None:
        floor.update({"test/entropy": float(entropy), "test/nll_gap": value - float(entropy)})
        log.info("test NLL %.4f nats; the data's entropy %.4f: %.4f nats above the floor",
                 value, entropy, floor["test/nll_gap"])
    if offset is not None:  # -log p(x) = -log p(z) + sum(log std)
        floor[f"{metric}_data"] = value + offset
        log.info("test NLL %.4f nats standardised, %.4f nats in data units", value,
                 floor[f"{metric}_data"])
    for logger in trainer.loggers:
        logger.log_metrics({k: v for k, v in floor.items() if k != metric},
                           step=trainer.global_step)
    return floor


def _fit(cfg: DictConfig, datamodule: L.LightningDataModule, module: FlowModule,
         trainer: L.Trainer, ckpt_path) -> dict[str, float | str]:
    n_params = sum(p.numel() for p in module.parameters())
    hparams = OmegaConf.to_container(cfg, resolve=True)
    hparams["n_params"] = n_params
    for logger in trainer.loggers:
        logger.log_hyperparams(hparams)
    log.info("%s with %.2fM parameters on data of shape %s, batch %s per device",
             type(module.model).__name__, n_params / 1e6,
             "x".join(map(str, datamodule.event_shape)), datamodule.batch_size)
    # Under DDP every process loads its own batches: the optimiser step averages the gradients
    # of all of them, so the global batch is what the learning rate should be judged against.
    accumulate = trainer.accumulate_grad_batches
    log.info("batch %d per device x %d devices x %d nodes%s = global batch %d",
             datamodule.batch_size, trainer.num_devices, trainer.num_nodes,
             f" x {accumulate} accumulated" if accumulate > 1 else "",
             datamodule.batch_size * trainer.num_devices * trainer.num_nodes * accumulate)
    try:
        # weights_only: resuming from a checkpoint someone else made must not run its code
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        # read before testing: trainer.test replaces the callback metrics with its own
        fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
        floor = test_against_entropy(trainer, module, datamodule)
    except SIGTERMException:
        # Lightning stopped after the step under way; ResumeCheckpoint saved it. Exit code 0.
        log.warning("stopped by SIGTERM at step %d: resume with ckpt_path=last run_name=%s",
                    trainer.global_step, cfg.get("run_name"))
        raise
    finally:
        # Jobs of a -m sweep share this process: close the W&B run or the next job logs into it.
        if any(isinstance(lg, WandbLogger) for lg in trainer.loggers):
            import wandb

            wandb.finish()
    metrics: dict[str, float | str] = {**fitted, **floor}
    metrics["step"] = trainer.global_step
    # the best is kept by the task.monitor callback, last.ckpt by ResumeCheckpoint
    checkpoints = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
    metrics["best_checkpoint"] = next((cb.best_model_path for cb in checkpoints
                                       if cb.best_model_path), "")
    metrics["last_checkpoint"] = next((cb.last_model_path for cb in checkpoints
                                       if cb.last_model_path), "")
    return metrics
