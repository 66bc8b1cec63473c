"""The data a checkpoint was trained on, read back from its record for every ``sample.py`` mode
that reads data (evaluate, fid, reconstruct, manipulate, interpolate from data).

``train.py`` records the resolved training config in the checkpoint (plain data, read with
``weights_only=True``: see :func:`flowgen.training.resume_checks.training_record`). The file may
come from anyone, so its ``data`` node is never instantiated as it stands: its ``_target_`` must
be one that flowgen's own data configs (``configs/data/*.yaml``) name, and its values plain
scalars or flat lists of them, so nothing in it can make Hydra build another object (a nested
``_target_``, ``_args_``, ``_partial_``) or run a resolver (``${...}``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from flowgen.config import CONFIG_DIR

#: sample.py's ``data_from``: auto (the checkpoint's data unless the command line names data),
#: checkpoint (the checkpoint's, an error without a record), config (sample.py's ``data``)
DATA_FROM = ("auto", "checkpoint", "config")
_SCALARS = (str, int, float, bool, type(None))


@cache
def allowed_targets() -> frozenset[str]:
    """The ``_target_`` of every data config flowgen ships: the only classes a recorded data
    config may name."""
    targets = (OmegaConf.load(p).get("_target_") for p in sorted((CONFIG_DIR / "data").glob(
        "*.yaml")))
    return frozenset(t for t in targets if isinstance(t, str))


def data_on_command_line() -> bool | None:
    """Whether this Hydra run's command line sets ``data=`` or ``data.<key>=``; None outside a
    Hydra run (a config composed in Python: no command line to read)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return names_data(list(HydraConfig.get().overrides.task))


def names_data(overrides: list[str]) -> bool:
    """Whether any of ``overrides`` (``key=value`` as typed, ``+``/``~`` prefixes allowed)
    chooses or changes the data config."""
    keys = (o.split("=", 1)[0].lstrip("+~") for o in overrides)
    return any(k == "data" or k.startswith("data.") or k.startswith("data@") for k in keys)


def recorded_data(meta: dict, path: Path | str) -> dict | None:
    """The checkpoint's recorded training ``data`` config, checked (see the module docstring);
    None for a checkpoint written before the record. A ``ValueError`` of one line when the
    record is not one flowgen would write."""
    training = meta.get("training")
    config = training.get("config") if isinstance(training, dict) else None
    data = config.get("data") if isinstance(config, dict) else None
    if data is None:
        return None
    refuse = f"{path}: its recorded training data is refused"
    if not isinstance(data, dict):
        raise ValueError(f"{refuse} (not a config but {type(data).__name__}): pass data=<config>")
    target = data.get("_target_")
    if target not in allowed_targets():
        raise ValueError(f"{refuse}: _target_ {target!r} is not one of flowgen's data configs "
                         f"(configs/data/*.yaml); pass data=<config> to choose the data")
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        if (not isinstance(key, str) or not key.isidentifier()
                or (key.startswith("_") and key != "_target_")):
            raise ValueError(f"{refuse}: key {key!r} is not a data option; pass data=<config>")
        if not all(isinstance(v, _SCALARS) and "${" not in str(v) for v in values):
            raise ValueError(f"{refuse}: data.{key} is not a plain value or list of values "
                             f"({str(value)[:60]!r}); pass data=<config>")
    return data


def evaluation_data(cfg: DictConfig, meta: dict, path: Path | str) -> tuple[DictConfig, str]:
    """The data node a mode reads and where it came from (``checkpoint`` or ``config``): the
    data the model was trained on, unless ``data_from=config`` or the command line names the
    data (``data=...``, ``data.root=...``), or the checkpoint has no record."""
    choice = cfg.get("data_from", "auto")
    if choice not in DATA_FROM:
        raise ValueError(f"data_from must be one of {'|'.join(DATA_FROM)}, got {choice!r}")
    if choice == "config" or (choice == "auto" and data_on_command_line()):
        return cfg.data, "config"
    data = recorded_data(meta, path)
    if data is None:
        if choice == "checkpoint":
            raise ValueError(f"{path} records no training data (written before flowgen recorded "
                             f"it): pass data=<config> with data_from=auto")
        return cfg.data, "config"
    return OmegaConf.create(data), "checkpoint"


def data_record(cfg: DictConfig, data: DictConfig | None = None) -> dict:
    """The data the pictures came from (``data``, else ``cfg.data``): its whole config
    (resolved), to make them again, and ``data_from`` once :func:`with_trained_data` chose it."""
    data = cfg.data if data is None else data
    record = {"data": data.get("_target_"), "data_path": data.get("path") or data.get("root"),
              "data_config": OmegaConf.to_container(data, resolve=True)}
    if cfg.get("data_from") in ("checkpoint", "config"):
        record["data_from"] = cfg.data_from
    return record


def with_trained_data(cfg: DictConfig, meta: dict, path: Path | str) -> DictConfig:
    """A copy of ``cfg`` whose ``data`` is :func:`evaluation_data`'s choice and whose
    ``data_from`` says where it came from (``checkpoint`` or ``config``)."""
    data, data_from = evaluation_data(cfg, meta, path)
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.data, cfg.data_from = data, data_from
    return cfg
