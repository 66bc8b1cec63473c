"""Options as a table: dotted key -> (spec, hint), checked against a composed config."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from flowgen.checks import check


def lookup(cfg: DictConfig, dotted: str) -> tuple[bool, object]:
    """(present, value) of ``a.b.c``; absent when a parent is missing or null. A required
    value left as ``???`` is an error naming the key."""
    parent_key, _, leaf = dotted.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig):
        return False, None
    if OmegaConf.is_missing(parent, leaf):
        raise ValueError(f"{dotted} is required: pass {dotted}=...")
    if leaf not in parent:
        return False, None
    return True, parent.get(leaf)


def check_table(cfg: DictConfig, table: dict[str, tuple[object, str]], prefix: str = "") -> None:
    """Each key of ``table`` (under ``prefix``) present in ``cfg`` against its spec: a
    ``ValueError`` naming the first bad one, its value, what is allowed and ``hint``."""
    for key, (spec, hint) in table.items():
        present, value = lookup(cfg, prefix + key)
        if present and spec is not None:
            check(prefix + key, value, spec, hint)
