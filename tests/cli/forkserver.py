"""A fork server for the CLI tests: ``python tests/cli/forkserver.py PARALLEL`` imports torch,
Lightning, Hydra and flowgen once, then runs each requested ``train.py``/``sample.py`` command
line in a forked child, as ``python <script> <args>`` would run it: its own working directory,
environment, ``sys.argv`` and ``sys.path[0]``, stdin and stdout on /dev/null, stderr into a file,
``__main__`` run by :mod:`runpy`, the exit code of ``SystemExit`` (1 and a traceback for any
other exception). Only the imports are shared: each command starts in a fresh fork of a process
that has run nothing of flowgen, and a bad input takes a fraction of a second instead of the
seconds a new interpreter spends importing torch and Lightning.

Requests, one JSON object per line on stdin: ``{"id", "script", "args", "cwd", "env",
"stderr", "timeout", "preexec"}`` (``preexec``: a pickled callable, base64, run in the child
first). Answers, one per line on stdout as children end: ``{"id", "code", "killed"}``. At most
``PARALLEL`` children run at once; the server exits when stdin closes and all have ended.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import pickle
import runpy
import select
import signal
import sys
import time
import traceback
import warnings


def _preload() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # read when torch loads: as run_cases' environment
    import hydra  # noqa: F401
    import lightning  # noqa: F401
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    import flowgen.entry  # noqa: F401
    import flowgen.sampling.run  # noqa: F401
    import flowgen.training.train  # noqa: F401


def _child(request: dict) -> None:
    """In the fork: become ``python <script> <args>`` and exit with its code."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        # new file objects: the parent's may hold locks no thread of this process will free
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        if request.get("preexec"):
            pickle.loads(base64.b64decode(request["preexec"]))()
        warnings.resetwarnings()
        warnings.simplefilter("ignore")  # what PYTHONWARNINGS=ignore gives a new interpreter
        script = request["script"]
        sys.argv = [script, *request["args"]]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001  (what the interpreter does with it)
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve(parallel: int) -> None:
    # the checkout, not tests/cli: as for `python train.py`, and pickled preexecs (tests.*)
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _preload()
    queue: list[dict] = []
    running: dict[int, tuple[dict, float]] = {}  # pid -> (request, start time)
    killed: set[int] = set()
    open_input = True
    while open_input or queue or running:
        if open_input:
            ready, _, _ = select.select([sys.stdin], [], [], 0.02)
            if ready:
                line = sys.stdin.readline()
                if line:
                    queue.append(json.loads(line))
                else:
                    open_input = False
        else:
            time.sleep(0.02)
        while queue and len(running) < parallel:
            request = queue.pop(0)
            pid = os.fork()
            if pid == 0:
                _child(request)
            running[pid] = (request, time.monotonic())
        for pid, (request, start) in list(running.items()):
            if pid not in killed and time.monotonic() - start > request["timeout"]:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del running[pid]
                answer = {"id": request["id"], "code": os.waitstatus_to_exitcode(status),
                          "killed": pid in killed}
                print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
