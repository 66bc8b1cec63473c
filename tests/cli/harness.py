"""Run bad inputs through the real ``train.py``/``sample.py`` and check what a user sees.

A case is ``Case(script, args, code, message)``: the process must exit with ``code``, end its
stderr with one ``error: ...`` line containing ``message`` (code 2) or print ``message`` (Hydra's
own errors, code 1), show no traceback, and leave every file that existed before byte-identical.
Each case runs in its own folder holding an earlier run's files (``ckpt/`` the checkpoint dir,
``out/`` sample.py's ``out``, ``cwd/`` the working directory), a few at a time, each forked from
one interpreter that imported torch and Lightning once (tests/cli/forkserver.py).
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

#: The smallest training run: one step of a tiny model, CSV logs.
TINY = ["model.steps=1", "model.hidden_channels=4", "trainer.max_steps=1",
        "trainer.accelerator=cpu", "logger=csv", "data.batch_size=4", "data.num_workers=0"]


@dataclass
class Case:
    script: str  # "train.py" | "sample.py"
    args: list[str]
    code: int  # 2: flowgen's one-line error; 1: Hydra's own message
    message: str  # what the last stderr line (code 2) or stderr (code 1) contains
    # Run before the command (gets the case's folder): plant files the case needs.
    prepare: Callable[[Path], None] | None = None
    # Extra arguments computed from the case's folder (e.g. paths inside it).
    args_in: Callable[[Path], list[str]] | None = None
    tiny: bool = True  # train.py: prepend TINY
    own_dirs: bool = True  # train.py: checkpoint dir and Hydra run dir inside the case folder
    env: dict[str, str] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None  # e.g. resource limits, in the child


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _command(case: Case, folder: Path) -> list[str]:
    args = list(case.args) + (case.args_in(folder) if case.args_in else [])
    if case.script == "train.py":
        own = [f"hydra.run.dir={folder / 'run'}",
               f"paths.checkpoint_dir={folder / 'ckpt'}"] if case.own_dirs else []
        return [*(TINY if case.tiny else []), *args, *own]
    return ["device=cpu", f"out={folder / 'out'}", *args]  # a case's out= wins


def _run_all(cases: dict[str, Case], tmp: Path, env: dict, timeout: float,
             parallel: int) -> dict[str, tuple[int, str]]:
    """name -> (exit code, stderr) of every case, run by tests/cli/forkserver.py: one
    interpreter imports torch and Lightning once and forks each command line from there."""
    requests = []
    for i, (name, case) in enumerate(cases.items()):
        preexec = (base64.b64encode(pickle.dumps(case.preexec)).decode()
                   if case.preexec else None)
        requests.append({"id": i, "script": str(ROOT / case.script),
                         "args": _command(case, tmp / name), "cwd": str(tmp / name / "cwd"),
                         "env": {**env, **case.env}, "stderr": str(tmp / f"{name}.stderr"),
                         "timeout": timeout, "preexec": preexec})
    server = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("forkserver.py")), str(parallel)],
        input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True,
        env=env, cwd=ROOT, timeout=timeout * (len(requests) // parallel + 2))
    answers = {a["id"]: a for a in map(json.loads, server.stdout.splitlines())}
    assert len(answers) == len(requests), ("fork server", server.returncode, server.stderr)
    results = {}
    for i, name in enumerate(cases):
        stderr = (tmp / f"{name}.stderr").read_text()
        if answers[i]["killed"]:
            stderr += f"\n[harness] killed after {timeout} s"
        results[name] = (answers[i]["code"], stderr)
    return results


def run_cases(cases: dict[str, Case], tmp: Path, shared: Path | None = None,
              timeout: float = 300, parallel: int = 2
              ) -> dict[str, tuple[Case, int, str, dict, dict]]:
    """Run every case, ``parallel`` at a time (one per core); name -> (case, returncode,
    stderr, files before, files after). ``shared``: a folder of inputs all cases read, which
    must not change either. ``timeout`` (seconds) bounds each command: a hang fails its case
    with a message."""
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    before = {}
    for name, case in cases.items():
        folder = tmp / name
        for sub in ("ckpt", "out", "cwd"):
            (folder / sub).mkdir(parents=True)
        (folder / "ckpt" / "last.ckpt").write_bytes(b"an earlier run's checkpoint")
        (folder / "out" / "grid-T0.70.png").write_bytes(b"an earlier sample")
        if case.prepare is not None:
            case.prepare(folder)
        before[name] = snapshot(folder)
    shared_before = snapshot(shared) if shared is not None else None
    ran = _run_all(cases, tmp, env, timeout, parallel)
    results = {name: (case, *ran[name], before[name], snapshot(tmp / name))
               for name, case in cases.items()}
    if shared is not None:
        assert snapshot(shared) == shared_before, "a shared input file changed"
    return results


def check_case(name: str, result: tuple[Case, int, str, dict, dict]) -> None:
    """The assertions every bad input must pass (see the module docstring)."""
    case, returncode, stderr, before, after = result
    assert returncode == case.code, (name, returncode, stderr)
    assert "Traceback" not in stderr, (name, stderr)
    lines = stderr.strip().splitlines()
    if case.code == 2:  # ours: the last line is the one error line
        assert lines and lines[-1].startswith("error: "), (name, stderr)
        assert case.message in lines[-1], (name, case.message, stderr)
        if case.script == "sample.py":
            assert lines == [lines[-1]], (name, stderr)  # sample.py says nothing else
    else:  # Hydra's own message for an unknown key, before anything runs
        assert case.message in stderr, (name, stderr)
    # nothing pre-existing changed, and nothing was added but Hydra's run folder (train.py)
    changed = sorted(k for k, v in before.items() if after.get(k) != v)
    assert not changed, (name, "changed or removed:", changed)
    added = sorted(k for k in after if k not in before and not k.startswith("run/"))
    assert not added, (name, "added:", added)
