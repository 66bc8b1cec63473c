"""sample.py's settings: every option's type and range refused before the checkpoint is read,
and the memory caps (images held, values for the checkpoint's shape, GIF size, batch)."""

from __future__ import annotations

import pytest

from flowgen.sampling.limits import (
    BATCH_VALUES,
    MAX_IMAGES,
    PICTURE_VALUES,
    check_memory,
    frames_per_row,
)
from flowgen.sampling.settings import GIF_MAX_MS, parse_settings
from tests.sampling.test_sample import compose


def settings(*overrides: str):
    return parse_settings(compose(["ckpt=any.ckpt", *overrides]))


@pytest.mark.parametrize("overrides, message", [
    (["seed=abc"], "seed must be an integer in 0..4294967295, got 'abc'"),
    (["seed=-1"], "seed must be an integer in 0..4294967295, got -1"),
    (["seed=4294967296"], "seed must be an integer in 0..4294967295"),
    (["batch_size=0"], "batch_size must be an integer >= 1, got 0"),
    (["batch_size=1.5"], "batch_size must be an integer >= 1, got 1.5"),
    (["nrow=0"], "nrow must be null or an integer >= 1, got 0"),
    (["nrow=true"], "nrow must be null or an integer >= 1, got True"),
    (["label=-2"], "label must be null or an integer >= 0, got -2"),
    (["progress=maybe"], "progress must be true or false, got 'maybe'"),
    (["mode=draw"], "mode must be one of grid|interpolate|reconstruct|manipulate|evaluate"),
    (["mode=interpolate", "method=cubic"], "method must be one of linear|slerp, got 'cubic'"),
    (["mode=interpolate", "steps=1"], "steps must be an integer >= 2, got 1"),
    (["mode=interpolate", f"frame_ms={GIF_MAX_MS + 1}"],
     f"frame_ms must be an integer in 1..{GIF_MAX_MS}, got {GIF_MAX_MS + 1}"),
    (["mode=interpolate", "gif_scale=0"], "gif_scale must be an integer >= 1, got 0"),
    (["mode=reconstruct", "indices=[0,-1]"], "indices must be a non-empty list of integers >= 0"),
    (["mode=interpolate", "endpoints=data", "indices=[3,-1]"],
     "indices must be two or more integers >= 0"),
    (["mode=evaluate", "limit_batches=0"], "limit_batches must be an integer >= 1, got 0"),
    (["mode=evaluate", "noise_seed=-5"], "noise_seed must be an integer in 0..4294967295"),
    (["mode=manipulate", "attribute=1", "alphas=[1,nan]"], "alphas must be a list of finite"),
])
def test_bad_option_is_one_clear_value_error(overrides, message):
    with pytest.raises(ValueError) as err:
        settings(*overrides)
    assert message in str(err.value)


def test_good_options_pass_and_keep_their_values():
    s = settings("seed=4294967295", "nrow=3", "label=2", f"frame_ms={GIF_MAX_MS}", "gif_scale=2")
    assert (s.seed, s.nrow, s.label, s.frame_ms, s.gif_scale) == (2**32 - 1, 3, 2, GIF_MAX_MS, 2)


@pytest.mark.parametrize("overrides, key", [
    ([f"n={MAX_IMAGES + 1}"], "n="),
    ([f"n={MAX_IMAGES // 2 + 1}", "temperature=[0.5,1.0]"], "n="),  # per temperature
    (["mode=interpolate", f"steps={MAX_IMAGES + 1}"], "steps="),
    (["mode=interpolate", "n_endpoints=300", "steps=300"], "steps="),
    (["mode=interpolate", "gif_scale=200"], "gif_scale=200"),
])
def test_counts_over_the_cap_fail_before_loading(overrides, key):
    with pytest.raises(ValueError, match="over the cap of") as err:
        settings(*overrides)
    assert str(err.value).startswith(key)


def test_indices_over_the_cap_fail_before_loading():
    cfg = compose(["ckpt=any.ckpt", "mode=reconstruct"])
    # set directly: Hydra takes minutes to parse an override of 30,000 list items
    cfg.indices = [0] * (MAX_IMAGES // 2 + 1)
    with pytest.raises(ValueError, match="over the cap of") as err:
        parse_settings(cfg)
    assert str(err.value).startswith("indices=")


def test_counts_just_under_the_cap_pass():
    assert settings(f"n={MAX_IMAGES}").n == MAX_IMAGES
    s = settings("mode=interpolate", "n_endpoints=3", "steps=5")
    assert frames_per_row(s) == 9  # (3 - 1) * (5 - 1) + 1


def test_memory_cap_depends_on_the_image_shape():
    rgb64 = (3, 64, 64)
    biggest = PICTURE_VALUES // (3 * 64 * 64)  # 2730
    check_memory(settings(f"n={biggest}"), rgb64)
    with pytest.raises(ValueError) as err:
        check_memory(settings(f"n={biggest + 1}"), rgb64)
    message = str(err.value)
    assert message.startswith(f"n={biggest + 1} needs ")
    assert f"n <= {biggest} for 3x64x64" in message
    assert "several runs with different seed=" in message
    check_memory(settings(f"n={biggest + 1}"), (1, 32, 32))  # fits for small grey images


def test_memory_cap_counts_frames_gif_and_batch():
    shape = (3, 64, 64)
    with pytest.raises(ValueError, match="^steps=3000 needs 36,864,000 values held at once"):
        check_memory(settings("mode=interpolate", "steps=3000", "gif_scale=1"), shape)
    with pytest.raises(ValueError, match="^gif_scale=20 needs .*lower gif_scale"):
        check_memory(settings("mode=interpolate", "steps=16", "gif_scale=20"), shape)
    check_memory(settings("mode=interpolate", "steps=16", "gif_scale=4"), shape)
    per_batch = BATCH_VALUES // (3 * 64 * 64)
    check_memory(settings("mode=evaluate", f"batch_size={per_batch}"), shape)
    with pytest.raises(ValueError, match=f"batch_size <= {per_batch} "):
        check_memory(settings("mode=evaluate", f"batch_size={per_batch + 1}"), shape)
