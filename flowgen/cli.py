"""What ``train.py`` and ``sample.py`` do with a user error: one ``error: ...`` line, exit 2.

Only the exception types flowgen's own checks raise with a clear message count as user errors;
anything else keeps its traceback.
"""

from __future__ import annotations

import re
import sys

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
