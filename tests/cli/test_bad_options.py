"""Bad option values through the real ``train.py``/``sample.py``: one case per class (wrong
type, out of range, bad choice, too large for memory) and group (top level, ``trainer``,
``model``, ``data``, ``optim``, ``callbacks``, sample.py's options). Each must end with one
``error:`` line naming the key, the value and what is allowed, exit 2 and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.cli.harness import Case, check_case, run_cases
from tests.cli.test_bad_inputs import _glow_ckpt

NO_GPU = not torch.cuda.is_available()
# ~25 processes, each importing torch and Lightning, four at a time on a shared machine
pytestmark = pytest.mark.timeout(1800)

#: name -> (overrides, what the error line contains)
TRAIN = {
    "top_type": (["seed=abc"], "seed must be null or an integer in 0..4294967295, got 'abc'"),
    "top_range": (["n_bits=9"], "n_bits must be an integer in 1..8, got 9"),
    "top_choice": (["compile=maybe"], "compile must be true or false, got 'maybe'"),
    "trainer_type": (["trainer.max_steps=abc"],
                     "trainer.max_steps must be an integer >= 1 or -1, got 'abc'"),
    "trainer_range": (["trainer.val_check_interval=0"],
                      "trainer.val_check_interval must be null, an integer >= 1 or a number in "
                      "(0, 1], got 0"),
    "trainer_choice": (["trainer.precision=17"], "trainer.precision must be null or one of "),
    "model_type": (["model.hidden_channels=abc"],
                   "model.hidden_channels must be an integer in 1..8192, got 'abc'"),
    "model_range": (["model.steps=0"], "model.steps must be an integer in 1..1024, got 0"),
    "model_choice": (["model.coupling=foo"],
                     "model.coupling must be one of affine|additive|spline, got 'foo'"),
    "model_memory": (["model.hidden_channels=100000"],
                     "model.hidden_channels must be an integer in 1..8192, got 100000"),
    "data_type": (["data.hflip=maybe"], "data.hflip must be true or false, got 'maybe'"),
    "data_range": (["data.num_workers=-1"], "data.num_workers must be an integer in 0.."),
    "data_choice": (["data=celeba", "data.eval_split=train"],
                    "data.eval_split must be one of valid|test, got 'train'"),
    "data_memory": (["data=celeba", "data.batch_size=100000"],
                    "data.batch_size=100000 needs 1,228,800,000 image values per batch"),
    "optim_type": (["optim.optimizer.lr=fast"],
                   "optim.optimizer.lr must be a finite number > 0, got 'fast'"),
    "optim_range": (["optim.warmup_steps=-1"], "optim.warmup_steps must be an integer >= 0"),
    "callbacks_type": (["callbacks.sample_grid.temperature=warm"],
                       "callbacks.sample_grid.temperature must be a finite number >= 0"),
    "callbacks_range": (["callbacks.ema.decay=1"],
                        "callbacks.ema.decay must be a number in [0, 1), got 1"),
    "callbacks_choice": (["callbacks.model_checkpoint.mode=avg"],
                         "callbacks.model_checkpoint.mode must be one of min|max, got 'avg'"),
    "callbacks_memory": (["callbacks.sample_grid.n=100000"],
                         "callbacks.sample_grid.n must be an integer in 1..1024, got 100000"),
}
if NO_GPU:
    TRAIN["trainer_no_gpu"] = (["trainer.accelerator=gpu"],
                               "trainer.accelerator=gpu but this machine has no GPU")

SAMPLE = {
    "type": (["seed=abc"], "seed must be an integer in 0..4294967295, got 'abc'"),
    "range": (["mode=interpolate", "frame_ms=1000000"],
              "frame_ms must be an integer in 1..655350, got 1000000"),
    "choice": (["mode=interpolate", "method=cubic"],
               "method must be one of linear|slerp, got 'cubic'"),
    "memory_n": (["n=100000"], "n=100000 needs 100,000 images held at once, over the cap"),
    "memory_gif": (["mode=interpolate", "gif_scale=500"], "gif_scale=500 needs"),
}


def _cases(data: Path) -> dict[str, Case]:
    ckpt = _glow_ckpt(data / "glow16.ckpt")
    cases = {f"train_{name}": Case("train.py", args, 2, message)
             for name, (args, message) in TRAIN.items()}
    cases.update({f"sample_{name}": Case("sample.py", [f"ckpt={ckpt}", *args], 2, message)
                  for name, (args, message) in SAMPLE.items()})
    return cases


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_options")
    (tmp / "data").mkdir()
    return run_cases(_cases(tmp / "data"), tmp, shared=tmp / "data")


NAMES = [f"train_{n}" for n in TRAIN] + [f"sample_{n}" for n in SAMPLE]


@pytest.mark.parametrize("name", NAMES)
def test_bad_option_one_line_error_exit_2_nothing_changed(runs, name):
    check_case(name, runs[name])
