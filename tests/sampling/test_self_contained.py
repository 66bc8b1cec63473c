"""Self-contained checkpoints (issue 13, item 2): a checkpoint records its resolved training
config, and ``sample.py mode=evaluate`` evaluates on the data the model was trained on unless
the command line names other data; a crafted record cannot choose what gets instantiated."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision

from flowgen.models.checkpoint import read_checkpoint
from flowgen.sampling import run
from flowgen.sampling.trained_data import allowed_targets, names_data, recorded_data
from flowgen.training import train
from tests.cli.harness import Case, check_case, run_cases
from tests.conftest import ROOT, compose_train
from tests.sampling.test_sample import compose

#: images in the tiny CIFAR-10's test split (what mode=evaluate must count)
N_TEST = 6


def write_tiny_cifar10(root, n_train: int = 8, n_test: int = N_TEST) -> None:
    """CIFAR-10 in torchvision's on-disk layout (``cifar-10-batches-py/``), random pixels."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else n_train
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcdefghij")}))


@pytest.fixture
def cifar_ckpt(tmp_path, monkeypatch):
    """A checkpoint trained (one step, tiny model) on a tiny CIFAR-10 under ``tmp_path``."""
    # torchvision checks the files against the real release's md5: ours cannot match
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    root = tmp_path / "cifar"
    write_tiny_cifar10(root)
    train(compose_train(["data=cifar10", f"data.root={root}", "data.download=false",
                         "data.num_workers=0", "data.batch_size=4", "model.steps=1",
                         "model.hidden_channels=4", "trainer.max_steps=1",
                         "trainer.val_check_interval=1", "trainer.limit_val_batches=1"],
                        tmp_path))
    return tmp_path / "ckpt" / "last.ckpt", root


def test_checkpoint_records_the_resolved_config_as_plain_data(cifar_ckpt):
    path, root = cifar_ckpt
    record = read_checkpoint(path)["flowgen"]["training"]["config"]  # weights_only=True
    assert record["data"]["_target_"] == "flowgen.data.datamodules.CIFAR10DataModule"
    assert record["data"]["root"] == str(root)  # the path as given
    assert record["model"]["hidden_channels"] == 4 and record["trainer"]["max_steps"] == 1


def test_evaluate_without_data_uses_the_training_data(cifar_ckpt, tmp_path):
    path, root = cifar_ckpt
    # sample.py's own data is mnist5k: without the record this would fail on the image shape
    written = run(compose([f"ckpt={path}", "mode=evaluate", "batch_size=4", "progress=false",
                           f"out={tmp_path / 'eval'}"]))
    result = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    settings = json.loads(written[-1].read_text())
    assert result["n_images"] == N_TEST and np.isfinite(result["bpd"])
    for record in (result, settings):
        assert record["data"] == "flowgen.data.datamodules.CIFAR10DataModule"
        assert record["data_path"] == str(root) and record["data_from"] == "checkpoint"
    # told otherwise: sample.py's data (mnist5k, 1x32x32) is used, and refused by shape
    with pytest.raises(ValueError, match=r"the data's images are \[1, 32, 32\]"):
        run(compose([f"ckpt={path}", "mode=evaluate", "data_from=config",
                     f"out={tmp_path / 'other'}"]))
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("mode", [
    ["mode=reconstruct", "indices=[0,1]"],
    ["mode=interpolate", "endpoints=data", "indices=[0,1]", "steps=3"],
    ["mode=interpolate", "endpoints=pairs", "pairs=[[0,1]]", "steps=3"],
])
def test_every_mode_that_reads_images_uses_the_training_data(cifar_ckpt, tmp_path, mode):
    """Not only evaluate: reconstructions and interpolations from data indices take the images
    of the data the model was trained on (sample.py's own data, 1x32x32, would be refused by
    shape), and say so in settings.json."""
    path, root = cifar_ckpt
    written = run(compose([f"ckpt={path}", *mode, "progress=false", f"out={tmp_path / 'o'}"]))
    settings = json.loads(written[-1].read_text())
    assert settings["data"] == "flowgen.data.datamodules.CIFAR10DataModule"
    assert settings["data_path"] == str(root) and settings["data_from"] == "checkpoint"
    with pytest.raises(ValueError, match=r"the data's images are \[1, 32, 32\]"):
        run(compose([f"ckpt={path}", *mode, "data_from=config", f"out={tmp_path / 'c'}"]))


def test_command_line_data_wins():
    assert names_data(["mode=evaluate", "data=cifar10"])
    assert names_data(["data.root=/x"]) and names_data(["+data.foo=1"])
    assert not names_data(["mode=evaluate", "ckpt=a.ckpt", "data_from=auto", "database=1"])


def test_old_checkpoints_keep_the_sample_config_data():
    assert recorded_data({"arch": "glow", "config": {}}, "old.ckpt") is None
    assert "flowgen.data.datamodules.CIFAR10DataModule" in allowed_targets()
    assert "flowgen.data.datamodules.CelebADataModule" in allowed_targets()


@pytest.mark.parametrize("data, message", [
    ({"_target_": "os.system", "command": "touch pwned"}, "_target_ 'os.system' is not one"),
    ({"_target_": "flowgen.data.datamodules.NpzDataModule",
      "path": {"_target_": "os.system", "command": "x"}}, "data.path is not a plain value"),
    ({"_target_": "flowgen.data.datamodules.NpzDataModule", "_args_": ["x"]}, "key '_args_'"),
    ({"_target_": "flowgen.data.datamodules.NpzDataModule", "path": "${oc.env:HOME}"},
     "data.path is not a plain value"),
])
def test_crafted_records_are_refused(data, message):
    meta = {"training": {"config": {"data": data}}}
    with pytest.raises(ValueError, match=message):
        recorded_data(meta, "crafted.ckpt")


def test_foreign_target_is_one_line_exit_2_and_nothing_written(cifar_ckpt, tmp_path):
    path, _ = cifar_ckpt
    ckpt = torch.load(path, weights_only=True)
    ckpt["flowgen"]["training"]["config"]["data"] = {"_target_": "os.system",
                                                     "command": "touch pwned"}
    shared = tmp_path / "shared"
    shared.mkdir()
    torch.save(ckpt, shared / "crafted.ckpt")
    cases = {"foreign": Case("sample.py", [f"ckpt={shared / 'crafted.ckpt'}", "mode=evaluate"],
                             2, "_target_ 'os.system' is not one of flowgen's data configs")}
    for name, result in run_cases(cases, tmp_path / "cases", shared=shared).items():
        check_case(name, result)
    assert not list((tmp_path / "cases").rglob("pwned"))
    assert not list((tmp_path / "cases").rglob("evaluation.json"))


def test_data_on_the_command_line_wins_over_the_record(tmp_path):
    """A real ``sample.py`` run: ``data=...`` given, the record (here a refused one) is not
    even read; the data is sample.py's."""
    train(compose_train(["trainer.max_steps=1", "trainer.val_check_interval=1",
                         "trainer.limit_val_batches=1"], tmp_path))
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    ckpt["flowgen"]["training"]["config"]["data"] = {"_target_": "os.system"}
    torch.save(ckpt, tmp_path / "crafted.ckpt")
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "sample.py"), f"ckpt={tmp_path / 'crafted.ckpt'}",
         "mode=evaluate", "data=mnist5k", "limit_batches=1", "batch_size=8", "progress=false",
         "device=cpu", f"out={out}"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "evaluation.json").read_text())
    assert result["data_from"] == "config" and result["n_images"] == 8
    assert result["data"] == "flowgen.data.datamodules.NpzDataModule"


def test_celeba_checkpoint_evaluates_on_its_celeba(tmp_path, monkeypatch):
    """The same for CelebA (torchvision's layout, 2 validation images), at image_size=32."""
    from tests.data.test_svhn_celeba import PARTITION, write_celeba

    monkeypatch.setattr(torchvision.datasets.celeba, "check_integrity", lambda *a, **k: True)
    root = tmp_path / "faces"
    write_celeba(root)
    train(compose_train(["data=celeba", f"data.root={root}", "data.download=false",
                         "data.image_size=32", "data.num_workers=0", "data.batch_size=2",
                         "model.steps=1", "model.hidden_channels=4", "trainer.max_steps=1",
                         "trainer.val_check_interval=1", "trainer.limit_val_batches=1"],
                        tmp_path))
    run(compose([f"ckpt={tmp_path / 'ckpt' / 'last.ckpt'}", "mode=evaluate", "batch_size=2",
                 "progress=false", f"out={tmp_path / 'eval'}"]))
    result = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert result["n_images"] == PARTITION.count(1) and result["data_from"] == "checkpoint"
    assert result["data"] == "flowgen.data.datamodules.CelebADataModule"
    assert result["data_path"] == str(root) and result["data_config"]["image_size"] == 32


def test_unresolvable_values_are_recorded_as_written():
    """A config composed outside a Hydra run cannot resolve ``${hydra:...}``: the record keeps
    the text instead of failing the run; everything else is resolved."""
    from omegaconf import OmegaConf

    from flowgen.training.resume_checks import plain_config

    cfg = OmegaConf.create({"out": "${hydra:runtime.output_dir}", "todo": "???",
                            "data": {"root": "${base}/tv", "sizes": [1, "${n}"]},
                            "base": "/d", "n": 3})
    assert plain_config(cfg) == {"out": "${hydra:runtime.output_dir}", "todo": "???",
                                 "data": {"root": "/d/tv", "sizes": [1, 3]}, "base": "/d", "n": 3}
