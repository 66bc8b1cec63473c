"""Real DDP: two CPU processes (gloo, ``ddp_fork``) train a tiny Glow through ``train(cfg)``.

The run happens in a fresh process, forked from a parent with a live two-thread OpenMP pool
whatever ``OMP_NUM_THREADS`` says (the case that used to hang), with a timeout. Each rank records
what it saw, what it holds and which files it wrote (:class:`DDPProbe`, plus a patched
``save_image`` that the forked ranks inherit); the tests compare the ranks afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.distributed as dist
from hydra.utils import instantiate

from flowgen.flows import ActNorm, Squeeze
from flowgen.objectives import preprocess
from flowgen.training import FlowModule, build, callbacks, train
from flowgen.training.ddp_safety import forks_ranks
from tests.conftest import ROOT, compose_train

BATCH, STEPS, VAL_BATCHES, WORLD = 16, 4, 2, 2
DDP_TIMEOUT = 300  # s; the run took 14-40 s here (2 cores, idle to busy), imports included


def _record_write(dirpath: Path, what: str) -> None:
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else -1
    with open(dirpath / f"writes_rank{rank}.txt", "a") as f:
        f.write(f"{what}\n")


class DDPProbe(L.Callback):
    """Saves, per rank, into ``dirpath``: the state dict after ActNorm's initialisation (before
    the first optimiser step) and after training, every training batch's images, and the synced
    ``val/bpd`` of each validation; and every checkpoint file the rank writes."""

    def __init__(self, dirpath: str):
        self.dir = Path(dirpath)
        self.images: list[torch.Tensor] = []
        self.val_bpd: list[float] = []

    def setup(self, trainer, pl_module, stage):
        # Whatever checkpoint IO plugin the config chose: record its writes on this rank.
        io = trainer.strategy.checkpoint_io
        save = io.save_checkpoint

        def recording_save(*args, **kwargs):
            _record_write(self.dir, "save_checkpoint")
            return save(*args, **kwargs)

        io.save_checkpoint = recording_save

    def _save(self, obj, name: str, trainer: L.Trainer) -> None:
        torch.save(obj, self.dir / f"{name}_rank{trainer.global_rank}.pt")

    @staticmethod
    def _state(pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.images.append(batch[0].detach().cpu().clone())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == 0:
            self._save(self._state(pl_module), "init", trainer)

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.val_bpd.append(float(trainer.callback_metrics["val/bpd"]))

    def on_train_end(self, trainer, pl_module):
        self._save(self._state(pl_module), "end", trainer)
        self._save({"images": self.images, "val_bpd": self.val_bpd,
                    "world_size": trainer.world_size, "threads": torch.get_num_threads()},
                   "seen", trainer)


def _config(tmp: Path):
    """The DDP run's config: 2 forked CPU ranks, a tiny Glow, the probes writing into ``tmp``."""
    return compose_train(["trainer=ddp_cpu", "trainer.strategy=ddp_fork",
                          "trainer.accelerator=cpu", f"data.batch_size={BATCH}",
                          f"trainer.max_steps={STEPS}", f"trainer.limit_val_batches={VAL_BATCHES}",
                          "+val_noise_seed=0", "callbacks.sample_grid.n=4",
                          f"+callbacks.probe._target_={__name__}.DDPProbe",
                          f"+callbacks.probe.dirpath={tmp / 'probe'}"], tmp)


def _train_with_probes(tmp: str) -> None:
    """The body of the DDP run, in a fresh process (see :func:`ddp_run`): ``train(cfg)`` with
    recording probes, after making this process's OpenMP pool live with two threads."""
    tmp = Path(tmp)
    # The worst case whatever OMP_NUM_THREADS says: a parent whose libgomp pool has run a
    # parallel region with 2 threads. Ranks forked from it hang unless train() makes them run
    # one thread (flowgen.training.ddp_safety).
    torch.set_num_threads(2)
    torch.randn(256, 256) @ torch.randn(256, 256)
    save_image = callbacks.save_image

    def recording_save_image(*args, **kwargs):
        _record_write(tmp / "probe", "save_image")
        return save_image(*args, **kwargs)

    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    train_log = logging.getLogger("flowgen.training.train")
    train_log.setLevel(logging.INFO)
    train_log.addHandler(handler)
    callbacks.save_image = recording_save_image  # the forked ranks inherit it
    train(_config(tmp))
    (tmp / "log.txt").write_text("\n".join(messages))


def _run_contained(args: list[str], timeout: float, what: str) -> subprocess.CompletedProcess:
    """``args`` in a session of its own; on timeout the whole session (forked ranks included)
    is killed and the test fails with the output's tail, instead of hanging."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"{what}: no result after {timeout} s (OMP_NUM_THREADS="
                    f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); killed. Output:\n"
                    f"{out[-3000:]}")
    finally:
        if proc.poll() is None:  # interrupted another way: leave nothing running
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(args, proc.returncode, out)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """The DDP run, in a fresh process: a hang there is killed after DDP_TIMEOUT s and fails the
    tests with a message (in this process it would outlive the test: the ranks are joined at
    exit), and the launcher's MASTER_PORT & co. stay out of this process's environment."""
    tmp = tmp_path_factory.mktemp("ddp")
    (tmp / "probe").mkdir()
    code = f"from {__name__} import _train_with_probes; _train_with_probes({str(tmp)!r})"
    out = _run_contained([sys.executable, "-c", code], DDP_TIMEOUT,
                         "the DDP run (do forked ranks run one thread? see ddp_safety)")
    assert out.returncode == 0, out.stdout[-3000:]
    return _config(tmp), tmp


def _load(tmp: Path, name: str) -> list:
    return [torch.load(tmp / "probe" / f"{name}_rank{r}.pt", weights_only=True)
            for r in range(WORLD)]


def _assert_identical(states: list[dict[str, torch.Tensor]]) -> None:
    a, b = states
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"parameters differ between ranks: {different}"


def test_ranks_see_disjoint_shards_of_the_data(ddp_run):
    _, tmp = ddp_run
    seen = _load(tmp, "seen")
    assert [s["world_size"] for s in seen] == [WORLD, WORLD]
    per_rank = [torch.cat(s["images"]) for s in seen]
    assert [len(x) for x in per_rank] == [STEPS * BATCH] * WORLD
    # mnist5k's training images are pairwise distinct, so equal bytes mean the same sample.
    keys = [{img.numpy().tobytes() for img in x} for x in per_rank]
    assert [len(k) for k in keys] == [STEPS * BATCH] * WORLD
    assert not keys[0] & keys[1], "two ranks trained on the same images"


def test_forked_ranks_run_one_thread_each(ddp_run):
    # Their parent ran two (see _train_with_probes): more in a forked rank would hang.
    _, tmp = ddp_run
    assert [s["threads"] for s in _load(tmp, "seen")] == [1] * WORLD


def test_parameters_are_bit_identical_across_ranks_after_actnorm_init_and_after_training(
        ddp_run):
    cfg, tmp = ddp_run
    init, end = _load(tmp, "init"), _load(tmp, "end")
    _assert_identical(init)
    _assert_identical(end)
    flags = [v for k, v in init[0].items() if k.endswith(".initialized")]
    assert len(flags) == cfg.model.levels * cfg.model.steps and all(map(bool, flags))
    assert any(not torch.equal(init[0][k], end[0][k]) for k in init[0]), "training did nothing"

    # The check has teeth: DDP broadcasts the parameters once, at wrapping, but ActNorm
    # initialises later, in the first forward, from each rank's own batch. Those batches differ
    # enough that without the all-reduce the ranks would start apart: the first ActNorm's bias is
    # -(mean of the global batch), not of either rank's half.
    _, module, _ = build(cfg)
    name = next(n for n, m in module.named_modules() if isinstance(m, ActNorm))
    first = [s["images"][0] for s in _load(tmp, "seen")]

    def stats(pixels: torch.Tensor) -> torch.Tensor:  # ActNorm's (bias, log_scale) for them
        x, _ = Squeeze()(preprocess(pixels, cfg.n_bits, noise=False))
        x = x.double()
        return torch.cat([-x.mean((0, 2, 3)), -x.std((0, 2, 3), correction=0).log()])

    actual = torch.cat([init[0][f"{name}.{p}"].double().flatten() for p in ("bias", "log_scale")])
    # Up to the dequantisation noise (the stats here use the bin centres), they are the global
    # batch's statistics ...
    torch.testing.assert_close(actual, stats(torch.cat(first)), rtol=0, atol=1e-4)
    for r in range(WORLD):  # ... and those of neither rank's half alone.
        assert (actual - stats(first[r])).abs().max() > 1e-3, f"rank {r} used its own batch"


def test_validation_bpd_equals_the_single_process_value(ddp_run):
    cfg, tmp = ddp_run
    seen = _load(tmp, "seen")
    val = [s["val_bpd"] for s in seen]
    assert len(val[0]) == STEPS // cfg.trainer.val_check_interval and val[0] == val[1]

    # One process, the same images (DistributedSampler, no shuffle: rank r takes r, r+2, ...;
    # 2 batches of 16 per rank = the first 64 images), batched differently.
    _, module, _ = build(cfg)
    module.load_state_dict(_load(tmp, "end")[0])
    dm = instantiate(cfg.data, batch_size=8)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=WORLD * VAL_BATCHES * 2)
    single = trainer.validate(module, datamodule=dm, verbose=False)[0]["val/bpd"]
    assert abs(val[0][-1] - single) < 1e-5, (val[0][-1], single)


def test_fixed_validation_noise_does_not_depend_on_the_batching(ddp_run):
    cfg, _ = ddp_run
    _, module, _ = build(cfg)
    assert isinstance(module, FlowModule) and module.val_noise_seed == 0
    pixels = torch.randint(0, 256, (6, 1, 32, 32), dtype=torch.uint8)
    module.eval()
    with torch.no_grad():
        whole = module.objective(module.model, (pixels, None), noise_seed=0).values
        parts = torch.cat([module.objective(module.model, (pixels[i:i + 2], None),
                                            noise_seed=0).values for i in range(0, 6, 2)])
    torch.testing.assert_close(whole, parts)


def test_only_rank_zero_writes_sample_grids_and_checkpoints(ddp_run):
    _, tmp = ddp_run
    writes = sorted(p.name for p in (tmp / "probe").glob("writes_*"))
    assert writes == ["writes_rank0.txt"], writes
    lines = (tmp / "probe" / "writes_rank0.txt").read_text().split()
    n_val = STEPS // 2
    assert lines.count("save_image") == 2 * n_val  # a sample grid and an interpolation strip
    assert lines.count("save_checkpoint") >= n_val  # best and last at each validation
    assert sorted(p.name for p in (tmp / "out" / "samples").iterdir()) == sorted(
        [f"step{s:07d}.png" for s in range(2, STEPS + 1, 2)]
        + [f"interp-step{s:07d}.png" for s in range(2, STEPS + 1, 2)])
    assert (tmp / "ckpt" / "last.ckpt").is_file()


def test_the_log_states_the_global_batch(ddp_run):
    _, tmp = ddp_run
    assert f"batch {BATCH} per device x {WORLD} devices x 1 nodes = global batch {BATCH * WORLD}" \
        in (tmp / "log.txt").read_text()


@pytest.mark.parametrize("strategy, forked", [
    ("ddp_fork", True), ("ddp_notebook", True), ("ddp", False), ("ddp_spawn", False)])
def test_fork_safe_ranks_knows_which_strategies_fork(strategy, forked):
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=strategy, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False)
    assert forks_ranks(trainer) is forked


def test_ddp_configs_compose(tmp_path):
    gpu = compose_train(["trainer=ddp"], tmp_path).trainer
    assert (gpu.strategy, gpu.devices, gpu.sync_batchnorm, gpu.use_distributed_sampler) == \
        ("ddp", "auto", False, True)
    cpu = compose_train(["trainer=ddp_cpu"], tmp_path).trainer
    assert (cpu.accelerator, cpu.devices, cpu.strategy, cpu.num_nodes) == ("cpu", 2, "ddp", 1)


def test_slurm_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="hydra-submitit-launcher is not installed")
    from hydra import compose, initialize_config_dir

    from flowgen.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.nodes=2",
                                          "hydra.launcher.gpus_per_node=4",
                                          "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == \
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node,
            launcher.partition) == (2, 4, 4, "gpu")
    assert launcher.timeout_min > 0
