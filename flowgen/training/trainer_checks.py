"""Checks of the trainer options against this machine and Lightning's rules, run before
anything is built: the accelerator exists, ``devices`` fits it, the validation interval counts."""

from __future__ import annotations

import torch
from lightning.pytorch.accelerators import AcceleratorRegistry
from omegaconf import DictConfig

from flowgen.checks import is_int, plain

DEVICE_NAMES = {"gpu": "GPU", "cuda": "CUDA GPU", "mps": "Apple MPS device", "tpu": "TPU"}


def _accelerator_available(name: str) -> bool:
    if name == "gpu":  # Lightning's gpu means CUDA or Apple's MPS
        return any(_accelerator_available(n) for n in ("cuda", "mps"))
    return AcceleratorRegistry[name]["accelerator"].is_available()


def check_devices(cfg: DictConfig) -> None:
    """The accelerator exists here, and ``devices`` fits it (CPU: a process count)."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig):
        return
    accelerator, devices = trainer.get("accelerator", "auto"), trainer.get("devices", "auto")
    if accelerator in ("gpu", "cuda", "mps", "tpu") and not _accelerator_available(accelerator):
        raise ValueError(f"trainer.accelerator={accelerator} but this machine has no "
                         f"{DEVICE_NAMES[accelerator]} that torch "
                         f"can use: train with trainer.accelerator=cpu (or auto)")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not _accelerator_available("gpu"))
    if on_cpu and devices != "auto" and not (is_int(devices) and devices >= 1):
        raise ValueError(f"trainer.devices={plain(devices)} selects GPUs, but this run trains "
                         f"on the CPU: give a number of processes >= 1 or auto")
    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        have = torch.cuda.device_count()
        wanted = plain(devices) if not isinstance(devices, (int, str)) else []
        if (is_int(devices) and devices > have) or any(i >= have for i in wanted):
            raise ValueError(f"trainer.devices={plain(devices)} but this machine has {have} "
                             f"GPU(s): use trainer.devices<={have} or -1 (all)")


def check_validation_interval(cfg: DictConfig) -> None:
    """A fraction of an epoch needs epochs to count in (Lightning refuses it at ``fit``)."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig):
        return
    interval = trainer.get("val_check_interval")
    if isinstance(interval, float) and trainer.get("check_val_every_n_epoch", 1) is None:
        raise ValueError(f"trainer.val_check_interval={interval} is a fraction of an epoch, but "
                         f"trainer.check_val_every_n_epoch=null counts steps across epochs: "
                         f"give a number of steps (e.g. 500) or set "
                         f"trainer.check_val_every_n_epoch=1")
