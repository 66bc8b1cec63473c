"""What ``train.py`` and ``sample.py`` do with a user error: one ``error: ...`` line, exit 2.

Only the exception types flowgen's own checks raise with a clear message count as user errors;
anything else keeps its traceback.
"""

from __future__ import annotations

import sys

#: Raised by flowgen's checks of configs, data, checkpoints and output folders.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, OSError)


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


def exit_with_error(err: BaseException, code: int = 2) -> None:
    """Print ``error: <message>`` (whitespace folded to one line) to stderr and exit."""
    message = " ".join(str(err).split()) or type(err).__name__
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
