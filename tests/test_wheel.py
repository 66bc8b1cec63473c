"""``pip install .`` gives a working package: the wheel holds the configs and the embedded data,
and its ``flowgen-train``/``flowgen-sample`` run from an empty folder, writing there.

The wheel goes into a fresh venv with ``--no-deps``; that venv sees this environment's installed
dependencies through a ``.pth`` line (no second multi-GB torch install), but not its flowgen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.cli.harness import TINY
from tests.conftest import ROOT


def test_the_package_list_is_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "flowgen").rglob("__init__.py")}
    assert listed == found | {"flowgen.configs", "flowgen.embedded"}


@pytest.mark.slow  # ~50 s: make test-slow (the default run stays well under CI's 15 minutes)
@pytest.mark.timeout(900)
def test_the_wheel_trains_and_samples_from_an_empty_folder(tmp_path: Path):
    dist, env_dir, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(dist), str(ROOT)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = dist.glob("flowgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "flowgen/configs/train.yaml" in names and "flowgen/embedded/mnist5k.npz" in names
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    # the dependencies of this environment, as a plain path: its editable flowgen stays out
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
           "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    where = subprocess.run([str(python), "-c", "import flowgen; print(flowgen.__file__)"],
                           cwd=work, capture_output=True, text=True, env=env, check=True)
    assert where.stdout.startswith(str(env_dir)), where.stdout
    train = subprocess.run(["flowgen-train", *TINY, "run_name=wheel",
                            "trainer.limit_val_batches=1"], cwd=work, capture_output=True,
                           text=True, env=env, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert (work / "checkpoints" / "wheel" / "last.ckpt").is_file()
    sample = subprocess.run(["flowgen-sample", "ckpt=checkpoints/wheel/last.ckpt", "n=4",
                             "device=cpu", "out=grid"], cwd=work, capture_output=True, text=True,
                            env=env, timeout=300)
    assert sample.returncode == 0, sample.stderr[-3000:]
    assert list((work / "grid").glob("grid-*.png"))
