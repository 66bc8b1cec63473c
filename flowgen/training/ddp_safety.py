"""Forked DDP ranks and OpenMP: a forked rank runs one CPU thread, or it can hang for ever.

torch's CPU kernels run on GNU OpenMP (libgomp). Once a process has run a parallel region with
more than one thread, libgomp keeps a pool of worker threads; a child made by ``fork`` inherits
the pool's bookkeeping but not its threads, and its first parallel region with more than one
thread waits for them for ever (the main thread sleeps in a futex, the other rank in gloo's
poll). ``ddp_fork`` and ``ddp_notebook`` fork their ranks, so with ``OMP_NUM_THREADS`` above 1
(or unset, on a machine with more cores than ranks) a run hung at its first step.

A forked child may safely use exactly one thread, which is what PyTorch's own DataLoader workers
do. :func:`fork_safe_ranks` makes every child forked from this process start that way, before
any of its code runs. Strategies that start fresh processes (``ddp``, ``ddp_spawn``) are not
forked and keep ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import logging
import os

import lightning as L
import torch

log = logging.getLogger(__name__)

_registered = False


def _one_thread_in_child() -> None:
    """Runs in every forked child before anything else (``os.register_at_fork``)."""
    # Set the variable too: Lightning's launcher raises the thread count of a forked rank to
    # cores // ranks when OMP_NUM_THREADS is unset, which would bring the hang back.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def protect_forked_children() -> None:
    """From now on, every child this process forks runs one OpenMP thread. Idempotent."""
    global _registered
    if not _registered:
        os.register_at_fork(after_in_child=_one_thread_in_child)
        _registered = True


def forks_ranks(trainer: L.Trainer) -> bool:
    """Whether ``trainer``'s strategy starts its ranks with ``fork`` (``ddp_fork``, ...)."""
    launcher = getattr(trainer.strategy, "launcher", None)
    return getattr(launcher, "_start_method", None) == "fork"


def fork_safe_ranks(trainer: L.Trainer) -> None:
    """Call before ``trainer.fit``: forked ranks (and any other forked child) run one thread
    each, so they cannot hang on the parent's OpenMP pool; says so when that costs threads."""
    protect_forked_children()
    threads = torch.get_num_threads()
    if forks_ranks(trainer) and threads > 1:
        log.warning("the DDP ranks are forked: each runs 1 CPU thread, not %d (a forked "
                    "process cannot use its parent's OpenMP threads); trainer.strategy=ddp "
                    "starts fresh processes that use OMP_NUM_THREADS", threads)
