"""Loading weights saved under older parameter names (checkpoints of format 1)."""

from __future__ import annotations


def rename_legacy_keys(state_dict: dict, prefix: str, renames: dict[str, str]) -> None:
    """Rename, in place, ``prefix + old`` to ``prefix + new`` for each ``old -> new`` of
    ``renames`` where only the old name is present: called from a module's
    ``_load_from_state_dict`` before torch matches the keys."""
    for old, new in renames.items():
        if prefix + old in state_dict and prefix + new not in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)
