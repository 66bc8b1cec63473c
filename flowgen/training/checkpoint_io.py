"""Checkpoint files: written atomically, read by flowgen's one checkpoint reader, and removed
one regular file at a time (never a folder, never through a link)."""

from __future__ import annotations

import errno
import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from flowgen.models.checkpoint import read_torch_file

#: What a write dies of when the disk (or a quota, or ``ulimit -f``) is full.
NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
#: The temporary files :func:`atomic_write_bytes` writes beside their target.
TEMPORARY = re.compile(r"^\..+\.tmp-\d+$")


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush and fsync it, then rename it
    over ``path``. Renaming within one folder is atomic, so ``path`` holds either the previous
    file or the complete new one (Lightning's own save goes through the system temp folder,
    which is a copy, not a rename, when that is another file system)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno not in NO_SPACE:
            raise
        # "File too large" does not say that the disk is full, nor that nothing was lost.
        raise OSError(err.errno, f"no space to write {path} ({len(data) / 1e6:.1f} MB: "
                                 f"{err.strerror}); the previous {path.name} is kept: free "
                                 f"space or set paths.checkpoint_dir=<a disk with room>") from err
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in ``folder`` (regular
    files named like :func:`atomic_write_bytes`'s, not links); call it only while holding the
    run's lock, when no other process can be writing there. Returns what was removed."""
    removed = []
    for entry in os.scandir(folder) if Path(folder).is_dir() else ():
        if TEMPORARY.match(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def remove_file(path: str | Path) -> None:
    """Remove one regular file; a folder or a link is left alone (Lightning's own removal is
    recursive, which a path planted in a checkpoint could aim at anything)."""
    path = Path(path)
    if path.is_file() and not path.is_symlink():
        path.unlink()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with :func:`atomic_write_bytes` for local paths,
    :func:`~flowgen.models.checkpoint.read_torch_file` for reading (``weights_only=True`` and
    flowgen's messages; Lightning also reads its own files through it, e.g. the weights a
    spawned rank 0 hands back) and :func:`remove_file` for removing."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if "://" in str(path):  # remote storage: fsspec's transactions apply
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(buffer.getvalue(), path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return read_torch_file(path, map_location or "cpu")

    def remove_checkpoint(self, path) -> None:
        if "://" in str(path):
            return super().remove_checkpoint(path)
        remove_file(path)
