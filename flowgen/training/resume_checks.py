"""Before resuming: the checkpoint is read by flowgen's one reader and compared with the
command's config, so a mismatch is refused with one line before anything is written.

Lightning would otherwise fail half-way with a traceback (other layer sizes, another
optimiser's state), or go on silently with what the file says (another ``n_bits``, the saved
learning rate in place of the configured one).
"""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from flowgen.models.checkpoint import checkpoint_format, read_checkpoint
from flowgen.models.upgrade import upgrade_config
from flowgen.training.module import FlowModule

log = logging.getLogger(__name__)
#: What a checkpoint needs beyond weights to resume training.
TRAINING_STATE = ("optimizer_states", "loops", "callbacks", "global_step", "epoch")
#: Model arguments that change how training runs, not the weights: free to differ on resume.
#: (``memory`` is a training option now; checkpoints written before record it as the model's.)
NOT_ARCHITECTURE = {"memory"}


def slurm_restarts(environ: dict | None = None) -> int:
    """How many times SLURM has requeued this job (``SLURM_RESTART_COUNT``; 0 outside SLURM or
    on a first start)."""
    value = (os.environ if environ is None else environ).get("SLURM_RESTART_COUNT", "0")
    return int(value) if value.isdigit() else 0


def resolve_ckpt_path(value: Any, checkpoint_dir: str | Path,
                      environ: dict | None = None) -> Path | None:
    """``ckpt_path`` as a file to resume from: ``last`` is this run's ``last.ckpt`` (None, a
    fresh start, when there is none yet: what a first SLURM job finds), anything else a path.

    Unset in a job SLURM requeued (time limit, preemption) it is ``last``: the requeued job runs
    the same command again, which must continue the run, not refuse its folder. (The run's name
    is the same: ``slurm-<job id>`` from scripts/sbatch_train.sh, and the submitting time under
    the submitit launcher, which Hydra's resolver cache carries into every requeued job.)"""
    if value is None and slurm_restarts(environ):
        log.info("SLURM requeue %d: resuming from this run's last.ckpt", slurm_restarts(environ))
        value = "last"
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"ckpt_path must be a checkpoint file or 'last', got {value!r}")
    if value == "last":
        last = Path(checkpoint_dir) / "last.ckpt"
        if not last.is_file():
            log.info("ckpt_path=last: no %s yet, starting a new run", last)
            return None
        return last.absolute()
    return Path(value).expanduser().absolute()


def _optimizer_shape(state: dict) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """(parameters, hyper-parameter names, per-parameter state names) of an optimiser state
    dict: what tells Adam from Adamax, whatever the record says."""
    groups = state.get("param_groups") or [{}]
    n_params = sum(len(g.get("params", ())) for g in groups)
    per_param = next(iter(state.get("state", {}).values()), {})
    return n_params, tuple(sorted(groups[0])), tuple(sorted(per_param))


def _optimizer_differences(ckpt: dict, module: FlowModule) -> list[str]:
    saved = ckpt["flowgen"].get("training", {}).get("optim")
    if saved is not None:
        now = module.training_record.get("optim")
        keys = sorted(set(_flat(saved)) | set(_flat(now)))
        return [f"optim.{k}: {_flat(saved).get(k)!r} in the checkpoint, {_flat(now).get(k)!r} now"
                for k in keys if _flat(saved).get(k) != _flat(now).get(k)]
    # a checkpoint from before the record: compare the optimiser's structure
    states = ckpt.get("optimizer_states")
    if not isinstance(states, list) or len(states) != 1 or not isinstance(states[0], dict):
        return ["the checkpoint's optimiser state is not one optimiser's"]
    optimizer = module.optimizer_factory(module.parameters())
    fresh = optimizer.state_dict()
    saved_n, saved_hyper, saved_state = _optimizer_shape(states[0])
    n, hyper, _ = _optimizer_shape(fresh)
    if saved_n != n or saved_hyper != hyper:
        return [f"optimiser: {saved_n} parameters with settings {list(saved_hyper)} in the "
                f"checkpoint, {type(optimizer).__name__} over {n} with {list(hyper)} now"]
    return []


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict)
                   else {f"{prefix}{key}": value})
    return out


def _defaults(cls: type) -> dict[str, Any]:
    """The constructor arguments of ``cls`` that have defaults, with them."""
    params = inspect.signature(cls.__init__).parameters.items()
    return {k: p.default for k, p in params if p.default is not inspect.Parameter.empty}


def config_differences(ckpt: dict, module: FlowModule, n_bits: int | None) -> list[str]:
    """What the command would build or train differently from the checkpoint, one entry per
    key (architecture and data shape, ``n_bits`` (None: vector data), optimiser)."""
    meta, model = ckpt["flowgen"], module.model
    if meta.get("arch") != model.arch:
        return [f"model: {meta.get('arch')!r} in the checkpoint, {model.arch!r} now"]
    saved = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    saved = upgrade_config(saved, checkpoint_format(meta))  # an older format's argument names
    saved = {**_defaults(type(model)), **saved}  # an argument added since: built with its default
    differences = [f"model.{k}: {saved.get(k)!r} in the checkpoint, {model.config.get(k)!r} now"
                   for k in sorted((set(saved) | set(model.config)) - NOT_ARCHITECTURE)
                   if saved.get(k) != model.config.get(k)]
    if meta.get("n_bits") != n_bits:
        differences.append(f"n_bits: {meta.get('n_bits')!r} in the checkpoint, {n_bits!r} now")
    return differences + _optimizer_differences(ckpt, module)


def check_resume(path: Path, module: FlowModule, cfg: DictConfig) -> None:
    """Read ``path`` as :func:`read_checkpoint` does and raise a ``ValueError`` unless training
    can resume from it with this config."""
    ckpt = read_checkpoint(path)
    missing = [key for key in TRAINING_STATE if key not in ckpt]
    if missing:
        raise ValueError(f"{path} holds a model but no training state ({', '.join(missing)} "
                         f"missing), so training cannot resume from it: sample from it with "
                         f"sample.py, or start a new run without ckpt_path")
    differences = config_differences(ckpt, module, module.n_bits)  # the task's bit depth
    if differences:
        raise ValueError(f"{path} was trained with another configuration ({'; '.join(differences)}"
                         f"): resume with the checkpoint's values, or start a new run with "
                         f"another run_name")


def training_record(cfg: DictConfig) -> dict:
    """What a checkpoint records of how it was trained (plain data, readable with
    ``weights_only=True``): the optimiser's config, compared on resume, and the whole resolved
    config, from which ``sample.py mode=evaluate`` takes the data the model was trained on."""
    return {"optim": OmegaConf.to_container(cfg.optim, resolve=True),
            "config": plain_config(cfg)}


def plain_config(node: DictConfig | ListConfig) -> dict | list:
    """``node`` resolved into dicts, lists and scalars, paths as the user gave them. A value
    that cannot be resolved here (``${hydra:...}`` in a config composed outside a Hydra run, a
    missing ``???``) is kept as written rather than failing the run over its record."""
    keys = range(len(node)) if isinstance(node, ListConfig) else list(node.keys())
    out = [_plain_entry(node, k) for k in keys]
    return out if isinstance(node, ListConfig) else dict(zip(map(str, keys), out, strict=True))


def _plain_entry(node: DictConfig | ListConfig, key: Any) -> Any:
    try:
        value = node[key]
    except OmegaConfBaseException:
        # the text as written, e.g. "${hydra:runtime.output_dir}" or "???"
        raw = OmegaConf.to_container(node, resolve=False)[key]
        return raw if isinstance(raw, str) else str(raw)
    if isinstance(value, (DictConfig, ListConfig)):
        return plain_config(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # a Path, an Enum, bytes: text, so the file stays plain data
