"""What ``train.py`` and ``sample.py`` do with a user error: one ``error: ...`` line, exit 2.

Only the exception types flowgen's own checks raise with a clear message count as user errors;
anything else keeps its traceback. :func:`quiet_console` filters the known third-party warnings
(in one place, each precisely, with its reason).
"""

from __future__ import annotations

import builtins
import logging
import re
import sys
import warnings

from flowgen.errors import FlowgenError

#: Raised by flowgen's checks of configs, data, checkpoints and output folders.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, OSError,
                                                FlowgenError)
#: How torch's DataLoader re-raises an exception from a worker process: its message is this line,
#: then the worker's whole traceback, whose last line is the original ``Type: message``.
WORKER_TRACEBACK = "Original Traceback (most recent call last):"


def user_error(err: BaseException) -> BaseException | None:
    """``err`` or the first exception in its ``__cause__`` chain that is a user error (Hydra
    wraps what ``instantiate`` raises in an ``InstantiationException``); None if none is."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, USER_ERRORS):
            return err
        seen.add(id(err))
        err = err.__cause__
    return None


def message(err: BaseException) -> str:
    """The error's message on one line; for an error re-raised from a DataLoader worker, the
    worker's own message (without the folded traceback around it)."""
    text = str(err)
    if WORKER_TRACEBACK in text:
        last = [line for line in text.split(WORKER_TRACEBACK, 1)[1].splitlines() if line.strip()]
        if last:  # "ValueError: ..." or "flowgen.errors.FlowgenError: ...": drop the type
            prefix = re.match(rf"(?:\w+\.)*{type(err).__name__}: ", last[-1].strip())
            text = last[-1].strip()[prefix.end() if prefix else 0:]
    return " ".join(text.split()) or type(err).__name__


def exit_with_error(err: BaseException, code: int = 2) -> None:
    """Print ``error: <message>`` (whitespace folded to one line) to stderr and exit."""
    print(f"error: {message(err)}", file=sys.stderr)
    sys.exit(code)


# Known third-party noise in a default run, each matched by category, module and message (never
# a blanket ignore: any other warning still prints). Lightning prints warnings as
# ``path.py:line: message`` (its own formatwarning), so a stray one is easy to miss: keep each
# entry's reason, and drop the entry when the library fixes it.
KNOWN_WARNINGS: tuple[tuple[str, str, str, str], ...] = (
    # (category, module regex, message regex, why it does not apply)
    ("FutureWarning", r"lightning\.pytorch\.utilities\._pytree",
     r"`isinstance\(treespec, LeafSpec\)` is deprecated",
     "Lightning 2.6's own call into torch 2.14's pytree API, on every fit: nothing to fix here"),
    ("UserWarning", r"lightning\.pytorch\.callbacks\.model_checkpoint",
     r"Checkpoint directory .* exists and is not empty",
     "the folder holds the run's own .lock (and, resuming, its own checkpoints); run_dir "
     "already refuses another run's checkpoints unless start_over moves them aside"),
    # Lightning's PossibleUserWarning, a UserWarning (matched as one: no Lightning import here)
    ("UserWarning", r"lightning\.pytorch\.trainer\.connectors\.data_connector",
     r"The '\w+' does not have many workers",
     "the default data is in-memory arrays (num_workers: 0 is fastest: no worker start-up or "
     "copies); folder data sets document data.num_workers"),
)
#: Lightning INFO lines (not warnings) that say nothing to a flowgen user: its advertising tip,
#: and the note that trainer.limit_val_batches=1.0 (the config's explicit default) means 100%.
LIGHTNING_CHATTER = ("💡 Tip:", "`Trainer(limit_val_batches=1.0)` was configured so 100%")


def quiet_console() -> None:
    """Install the filters for :data:`KNOWN_WARNINGS` and drop :data:`LIGHTNING_CHATTER`; train.py
    and sample.py call this first, so the console shows flowgen's own messages."""
    for category, module, text, _why in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=text, category=getattr(builtins, category),
                                module=module + r"\Z")
    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropChatter) for f in lightning_log.filters):
        lightning_log.addFilter(_DropChatter())


class _DropChatter(logging.Filter):
    """Rejects the :data:`LIGHTNING_CHATTER` records; every other record of that logger passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_CHATTER)
