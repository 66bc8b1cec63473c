"""Runs and checkpoints misused through the real ``train.py``/``sample.py``: a second run into a
run's folder, a run already running, a name that escapes ``checkpoints/``, a resume with another
config, files that are not training checkpoints, a checkpoint folder that cannot be written, a
full disk. Each gets one ``error:`` line, exit 2, and every file that was there is unchanged."""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from flowgen.models import Glow, model_metadata
from flowgen.training import train
from tests.cli.harness import Case, check_case, run_cases
from tests.conftest import compose_train

#: The config the shared checkpoint was trained with (and a resume must repeat).
SAME = ["model.steps=1", "model.hidden_channels=4", "data.batch_size=4", "optim.warmup_steps=2"]


def _real_checkpoint(tmp: Path) -> Path:
    """A training checkpoint of a tiny run of the default config (CSV logs)."""
    cfg = compose_train(["model.levels=3", "trainer.max_steps=2", "trainer.val_check_interval=2",
                         "callbacks.sample_grid.n=4", *SAME], tmp, shrink_model=False)
    return Path(train(cfg)["last_checkpoint"])


def _plant_run(source: Path):
    """The folders of an earlier run: its checkpoint, its record and its log (which a refused
    resume must leave as they are)."""
    def prepare(folder: Path) -> None:
        shutil.copyfile(source, folder / "ckpt" / "last.ckpt")
        (folder / "run" / ".hydra").mkdir(parents=True)
        (folder / "run" / ".hydra" / "config.yaml").write_text("the first command's config\n")
        (folder / "run" / "train.log").write_text("the first command's log\n")
    return prepare


def _hold_lock(folder: Path) -> None:
    """Another live run (that has saved nothing yet) holds the folder: this test process keeps
    the lock until the case has run."""
    (folder / "ckpt" / "last.ckpt").unlink()
    fd = os.open(folder / "ckpt" / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _LOCKS.append(fd)


_LOCKS: list[int] = []


def _disk_full() -> None:
    # Writes past 64 kB fail with EFBIG ("File too large"), as on a full disk or a quota.
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))


def _files(data: Path, real: Path) -> dict[str, Path]:
    files = {"real": real, "truncated": data / "truncated.ckpt", "empty": data / "empty.ckpt",
             "random": data / "random.ckpt", "foreign": data / "foreign.pt",
             "weights_only": data / "weights_only.ckpt", "nan": data / "nan.ckpt"}
    files["truncated"].write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(os.urandom(4096))
    torch.save({"state_dict": {"w": torch.zeros(3)}, "epoch": 3}, files["foreign"])
    model = Glow(event_shape=(1, 32, 32), levels=3, steps=1, hidden_channels=4)
    weights = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": weights, "flowgen": model_metadata(model, 8)},
               files["weights_only"])
    ckpt = torch.load(real, weights_only=True)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name] = torch.full_like(ckpt["state_dict"][name], float("nan"))
    torch.save(ckpt, files["nan"])
    files["x16"] = data / "x16.npz"
    x = np.random.default_rng(0).integers(0, 256, (16, 16, 16), dtype=np.uint8)
    np.savez(files["x16"], x_train=x, x_test=x[:8])
    return files


def _cases(tmp: Path) -> dict[str, Case]:
    data = tmp / "data"
    data.mkdir()
    f = _files(data, _real_checkpoint(tmp / "trained"))
    resume = lambda *args: Case("train.py", [*SAME, *args], 2, "",  # noqa: E731
                                tiny=False, args_in=lambda d: [f"ckpt_path={d / 'ckpt/last.ckpt'}"],
                                prepare=_plant_run(f["real"]))
    cases = {
        "new_run_into_a_run": Case("train.py", [], 2, "already holds a run (last.ckpt): resume "
                                   "it with run_name="),
        "run_already_running": Case("train.py", [], 2, "is already running", prepare=_hold_lock),
        "run_name_escapes_via_hydra": Case(
            "train.py", ["run_name=../../escaped"], 2, "run_name='../../escaped' cannot name a "
            "run folder", own_dirs=False, args_in=lambda d: [f"paths.root_dir={d / 'root'}"]),
        "run_name_escapes_checkpoints": Case("train.py", ["run_name=a/../../b"], 2,
                                             "cannot name a run folder"),
        "resume_other_architecture": resume("model.hidden_channels=8"),
        "resume_other_optimiser": resume("optim=adamax"),
        "resume_other_n_bits": resume("n_bits=5"),
        "resume_other_image_size": resume("data=npz", f"data.path={f['x16']}"),
        "checkpoint_folder_not_writable": Case(
            "train.py", [f"paths.checkpoint_dir={data / 'empty.ckpt'}/sub"], 2,
            f"cannot write checkpoints into {data / 'empty.ckpt'}/sub", own_dirs=False,
            args_in=lambda d: [f"hydra.run.dir={d / 'run'}"]),
        "disk_full": Case("train.py", ["model.hidden_channels=32", "trainer.max_steps=2"], 2,
                          "no space to write", own_dirs=False, preexec=_disk_full,
                          args_in=lambda d: [f"hydra.run.dir={d / 'run'}",
                                             f"paths.checkpoint_dir={d / 'run' / 'ckpt'}"]),
        "training_diverged": Case(
            "train.py", ["trainer.max_steps=20", "callbacks.nonfinite_guard.max_consecutive=3",
                         "+callbacks.poison._target_=tests.training.test_faults.PoisonGradients",
                         "+callbacks.poison.start=0"], 2,
            "3 training steps in a row up to step 2 had a NaN/Inf loss or gradient",
            own_dirs=False, args_in=lambda d: [f"hydra.run.dir={d / 'run'}",
                                               f"paths.checkpoint_dir={d / 'run' / 'ckpt'}"]),
        "sample_checkpoint_folder": Case("sample.py", [], 2, "is a folder, not a checkpoint file",
                                         args_in=lambda d: [f"ckpt={d / 'ckpt'}"]),
        "sample_nonfinite_weights": Case("sample.py", [f"ckpt={f['nan']}"], 2,
                                         "holds non-finite weights (NaN/Inf"),
    }
    cases["resume_other_architecture"].message = "model.hidden_channels: 4 in the checkpoint, 8 now"
    cases["resume_other_optimiser"].message = "optim.optimizer._target_: 'torch.optim.Adam' in"
    cases["resume_other_n_bits"].message = "n_bits: 8 in the checkpoint, 5 now"
    cases["resume_other_image_size"].message = ("model.event_shape: [1, 32, 32] in the checkpoint, "
                                                "[1, 16, 16] now")
    bad_files = {"truncated": "is not a readable flowgen checkpoint",
                 "empty": "is not a readable flowgen checkpoint",
                 "random": "is not a readable flowgen checkpoint",
                 "foreign": "is not a flowgen checkpoint (no 'flowgen' record)",
                 "weights_only": "holds a model but no training state",
                 "nan": "holds non-finite weights (NaN/Inf"}
    for kind, message in bad_files.items():
        cases[f"resume_from_{kind}"] = Case("train.py", [*SAME, f"ckpt_path={f[kind]}"], 2,
                                            message, tiny=False)
    cases["resume_from_a_folder"] = Case("train.py", [*SAME, f"ckpt_path={data}"], 2,
                                         "is a folder, not a checkpoint file", tiny=False)
    cases["resume_from_missing_file"] = Case("train.py", [*SAME, f"ckpt_path={data}/nope.ckpt"],
                                             2, "checkpoint not found", tiny=False)
    return cases


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_runs")
    try:
        return tmp, run_cases(_cases(tmp), tmp, shared=tmp / "data")
    finally:
        while _LOCKS:
            os.close(_LOCKS.pop())


NAMES = ["new_run_into_a_run", "run_already_running", "run_name_escapes_via_hydra",
         "run_name_escapes_checkpoints", "resume_other_architecture", "resume_other_optimiser",
         "resume_other_n_bits", "checkpoint_folder_not_writable", "disk_full",
         "sample_checkpoint_folder", "sample_nonfinite_weights", "resume_from_truncated",
         "resume_from_empty", "resume_from_random", "resume_from_foreign",
         "resume_from_weights_only", "resume_from_nan", "resume_from_a_folder",
         "resume_from_missing_file", "resume_other_image_size", "training_diverged"]


def test_every_case_is_checked(runs):
    assert sorted(runs[1]) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_bad_run_one_line_error_exit_2_nothing_lost(runs, name):
    check_case(name, runs[1][name])


def test_a_diverged_run_saved_its_last_checkpoint_and_no_nan_best(runs):
    tmp, _ = runs
    ckpt = tmp / "training_diverged" / "run" / "ckpt"
    assert torch.load(ckpt / "last.ckpt", weights_only=True)["global_step"] == 3
    assert not any("nan" in p.name for p in ckpt.iterdir())


def test_an_escaping_run_name_creates_no_folder(runs):
    tmp, _ = runs
    folder = tmp / "run_name_escapes_via_hydra"
    assert not (folder / "root").exists() and not (folder / "escaped").exists()
    assert not (tmp / "escaped").exists()
