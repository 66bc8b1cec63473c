"""``sample.py``: temperature grids and latent interpolations from a tiny, untrained checkpoint."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.utils import make_grid

from flowgen.data import preprocess
from flowgen.models import Glow, model_metadata
from flowgen.sampling import load_checkpoint, parse_settings, run, sample_images
from flowgen.sampling.interpolate import (
    encoded_endpoints,
    interpolate_latents,
    interpolation_frames,
    interpolation_weights,
    load_val_images,
)
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A flowgen checkpoint as train.py writes it (``model.``-prefixed weights + record)."""
    torch.manual_seed(0)
    model = Glow(event_shape=(1, 32, 32), levels=3, steps=1, hidden_channels=8)
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 1, 32, 32) - 0.5)  # initialises ActNorm
    path = tmp_path_factory.mktemp("ckpts") / "checkpoints" / "tinyrun" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "flowgen": model_metadata(model, n_bits=8)}, path)
    return path


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from flowgen.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("sample", overrides=["device=cpu", *overrides])


def grid_size(n: int, nrow: int, size: int = 32) -> tuple[int, int]:
    _, h, w = make_grid(torch.zeros(n, 1, size, size), nrow=nrow).shape
    return w, h  # PIL order


def test_grid_sizes_one_file_per_temperature_and_settings(ckpt, tmp_path):
    written = run(compose([f"ckpt={ckpt}", "n=10", "temperature=[0.5,1.0]", f"out={tmp_path}"]))
    assert [p.name for p in written] == ["grid-T0.50.png", "grid-T1.00.png", "settings.json"]
    for p in written[:2]:
        with Image.open(p) as im:
            assert im.size == grid_size(10, nrow=4)  # ceil(sqrt(10)) per row
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["ckpt"] == str(ckpt) and settings["mode"] == "grid"
    assert settings["n"] == 10 and settings["temperatures"] == [0.5, 1.0]
    assert settings["seed"] == 0 and settings["n_bits"] == 8


def test_n_above_batch_size_is_chunked_without_changing_the_samples(ckpt, tmp_path):
    written = run(compose([f"ckpt={ckpt}", "n=70", "batch_size=16", "nrow=10",
                           f"out={tmp_path}"]))
    with Image.open(written[0]) as im:
        assert im.size == grid_size(70, nrow=10)
    model, _ = load_checkpoint(parse_settings(compose([f"ckpt={ckpt}"])))
    chunked = sample_images(model, 70, 0.7, seed=0, batch_size=16)
    whole = sample_images(model, 70, 0.7, seed=0, batch_size=70)
    assert chunked.shape == (70, 1, 32, 32)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)


def test_same_seed_same_bytes_other_seed_other_bytes(ckpt, tmp_path):
    def png(seed: int, out: str) -> bytes:
        run(compose([f"ckpt={ckpt}", "n=9", f"seed={seed}", f"out={tmp_path / out}"]))
        return (tmp_path / out / "grid-T0.70.png").read_bytes()

    first = png(0, "a")
    assert png(0, "b") == first
    assert png(1, "c") != first


def test_default_output_folder_is_named_after_the_checkpoint_run(ckpt, tmp_path):
    written = run(compose([f"ckpt={ckpt}", "n=4", f"paths.root_dir={tmp_path}"]))
    folder = written[0].parent
    assert folder.parent == tmp_path / "outputs" / "tinyrun"
    assert folder.name.startswith("grid-")
    # a second call in the same second gets a fresh folder, not the first one's
    again = run(compose([f"ckpt={ckpt}", "n=4", f"paths.root_dir={tmp_path}"]))
    assert again[0].parent != folder and again[0].is_file()


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_random_interpolation_strip_and_looping_gif(ckpt, tmp_path, method):
    written = run(compose([f"ckpt={ckpt}", "mode=interpolate", f"method={method}", "steps=5",
                           "gif_scale=2", f"out={tmp_path}"]))
    assert [p.name for p in written] == ["interpolation-T0.70.png", "interpolation-T0.70.gif",
                                         "settings.json"]
    with Image.open(written[0]) as strip:
        assert strip.size == grid_size(5, nrow=5)
    with Image.open(written[1]) as gif:
        assert gif.n_frames == 2 * 5 - 2 and gif.info["loop"] == 0 and gif.size == (64, 64)
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(torch.tensor(list(gif.convert("L").getdata())).float())
    # forward then backward: frame k and frame 2*steps-2-k are the same picture
    assert torch.equal(frames[1], frames[7]) and not torch.equal(frames[0], frames[4])


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_data_interpolation_ends_decode_to_the_dataset_images(ckpt, tmp_path, method):
    cfg = compose([f"ckpt={ckpt}", "mode=interpolate", "endpoints=data", "indices=[3,7]",
                   f"method={method}", "steps=4", f"out={tmp_path}"])
    settings = parse_settings(cfg)
    model, meta = load_checkpoint(settings)
    pixels = load_val_images(cfg.data, settings.indices, model.in_shape)
    zs = encoded_endpoints(model, pixels, meta["n_bits"])
    za, zb = [z[:1] for z in zs], [z[1:] for z in zs]
    frames = interpolation_frames(model, za, zb, settings.steps, method)
    target = preprocess(pixels, meta["n_bits"], noise=False)
    assert frames.shape == (4, 1, 32, 32)
    assert (frames[0] - target[0]).abs().max() < 1e-4
    assert (frames[-1] - target[1]).abs().max() < 1e-4
    assert (frames[1] - target[0]).abs().max() > 1e-2  # the middle frames do move
    written = run(cfg)
    assert [p.name for p in written] == ["interpolation-data-3-7.png",
                                         "interpolation-data-3-7.gif", "settings.json"]
    assert json.loads(written[-1].read_text())["indices"] == [3, 7]


def test_slerp_keeps_the_norm_and_falls_back_to_linear_when_parallel():
    t = torch.linspace(0, 1, 5)
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    (mid,) = interpolate_latents([a], [b], 5, "slerp")
    torch.testing.assert_close(mid.norm(dim=1), torch.full((5,), 3.0))
    torch.testing.assert_close(mid[2], torch.full((2,), 3 / math.sqrt(2)))
    for other in (2 * a, -a, torch.zeros_like(a)):
        wa, wb = interpolation_weights(a, other, t, "slerp")
        torch.testing.assert_close(wa[:, 0], 1 - t.double())
        torch.testing.assert_close(wb[:, 0], t.double())


def test_bad_indices_fail_before_anything_is_written(ckpt, tmp_path):
    cfg = compose([f"ckpt={ckpt}", "mode=interpolate", "endpoints=data", "indices=[0,1000]",
                   f"out={tmp_path / 'out'}"])
    with pytest.raises(ValueError, match=r"indices \[0, 1000\] out of range.*1000 images"):
        run(cfg)
    assert not (tmp_path / "out").exists()


def test_cli_writes_a_grid_and_fails_cleanly_on_user_errors(ckpt, tmp_path):
    """The real ``sample.py``, one process per case, all started at once."""
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(bytes(range(256)) * 8)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cases = {  # overrides -> (exit code, what the one error line names)
        "ok": ([f"ckpt={ckpt}", "n=5", "temperature=[0.5,0.7]"], 0, None),
        "temperature": ([f"ckpt={ckpt}", "temperature=-1"], 2, "temperature must be"),
        "n": ([f"ckpt={ckpt}", "n=0"], 2, "number of samples must be a positive integer"),
        "missing": ([f"ckpt={tmp_path / 'nope.ckpt'}"], 2, "checkpoint not found"),
        "junk": ([f"ckpt={junk}"], 2, "is not a readable flowgen checkpoint"),
    }
    procs = {name: subprocess.Popen(
        [sys.executable, str(ROOT / "sample.py"), *args, f"out={tmp_path / name}"], cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (args, _, _) in cases.items()}
    try:
        _check_cli_cases(procs, cases, tmp_path)
    finally:  # a timeout or a failed case leaves no sample.py running, nor its pipes open
        for proc in procs.values():
            proc.kill()
            proc.communicate()
    assert list(cwd.iterdir()) == []  # Hydra left nothing in the working directory


def _check_cli_cases(procs: dict[str, subprocess.Popen], cases: dict, tmp_path: Path) -> None:
    """Each case's exit code, error line and files, waiting at most 120 s for each."""
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"sample.py case {name!r} did not finish within 120 s")
        _, code, message = cases[name]
        assert proc.returncode == code, (name, stderr)
        if code:
            assert stderr.startswith("error: ") and stderr.count("\n") == 1, (name, stderr)
            assert message in stderr, (name, stderr)
            assert not (tmp_path / name).exists()
        else:
            names = ["grid-T0.50.png", "grid-T0.70.png", "settings.json"]
            assert sorted(p.name for p in (tmp_path / name).iterdir()) == names
            lines = stdout.splitlines()
            assert [line for line in lines if line.startswith("wrote ")] == \
                [f"wrote {tmp_path / name / n}" for n in names]
            # and one health line per picture: its non-finite and out-of-range samples
            assert [line.split(":")[0] for line in lines if not line.startswith("wrote ")] == \
                ["grid-T0.50", "grid-T0.70"], stdout


def test_label_samples_one_class_of_a_conditional_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = Glow(event_shape=(1, 32, 32), levels=3, steps=1, hidden_channels=8,
                 num_classes=10)
    with torch.no_grad():
        model.transform.top.prior.classes.embedding.weight.normal_()  # make the classes differ
        model(torch.rand(8, 1, 32, 32) - 0.5)
    path = tmp_path / "cond" / "last.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "flowgen": model_metadata(model, n_bits=8)}, path)
    loaded, _ = load_checkpoint(parse_settings(compose([f"ckpt={path}"])))
    threes = sample_images(loaded, 4, 0.7, seed=1, label=3)
    sevens = sample_images(loaded, 4, 0.7, seed=1, label=7)
    assert threes.shape == (4, 1, 32, 32) and not torch.allclose(threes, sevens)
    written = run(compose([f"ckpt={path}", "n=4", "label=3", f"out={tmp_path / 'out'}"]))
    assert json.loads(written[-1].read_text())["label"] == 3
    with pytest.raises(ValueError, match=r"label must be an integer in 0..9"):
        run(compose([f"ckpt={path}", "label=12", f"out={tmp_path / 'bad'}"]))
    assert not (tmp_path / "bad").exists()


def test_label_on_an_unconditional_checkpoint_is_a_clear_error(ckpt, tmp_path):
    with pytest.raises(ValueError, match="unconditional"):
        run(compose([f"ckpt={ckpt}", "label=1", f"out={tmp_path}"]))


def test_bf16_precision_decodes_nearly_the_fp32_pictures(ckpt, tmp_path):
    """precision=bf16 only rounds the coupling networks: the same latents give pictures within
    a few grey levels of the float32 ones, recorded in settings.json; exact modes refuse it."""
    with torch.no_grad():  # a checkpoint whose nets do something (the fixture's start at zero)
        state = torch.load(ckpt, weights_only=True)
        g = torch.Generator().manual_seed(1)
        state["state_dict"] = {k: v + 0.05 * torch.randn(v.shape, generator=g)
                               if v.is_floating_point() and "actnorm" not in k else v
                               for k, v in state["state_dict"].items()}
        ckpt = tmp_path / "moved.ckpt"
        torch.save(state, ckpt)
    pictures = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        run(compose([f"ckpt={ckpt}", "n=16", f"precision={precision}", f"out={out}"]))
        pictures[precision] = torch.tensor(list(Image.open(out / "grid-T0.70.png").getdata()),
                                           dtype=torch.float32)
        assert json.loads((out / "settings.json").read_text())["precision"] == precision
    difference = (pictures["bf16"] - pictures["fp32"]).abs()
    assert 0 < difference.max() and difference.mean() < 2.0  # grey levels of 255
    with pytest.raises(ValueError, match="precision=bf16 is for pictures"):
        parse_settings(compose([f"ckpt={ckpt}", "mode=reconstruct", "precision=bf16"]))
