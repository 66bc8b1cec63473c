"""``mode=interpolate`` through three or more endpoints (indices, image files, random latents)
and the grid of several pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from flowgen.data import preprocess
from flowgen.sampling import load_checkpoint, parse_settings, run
from flowgen.sampling.interpolate import (
    encoded_endpoints,
    interpolate_path,
    load_val_images,
    path_frames,
    path_length,
)
from tests.sampling.test_modes import cell
from tests.sampling.test_sample import ckpt, compose, grid_size  # noqa: F401 (fixture)


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0  # loops forever
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("L")))
    return frames


def test_path_goes_through_every_endpoint_exactly_and_segments_are_separate():
    zs = [torch.randn(3, 4, 2, 2), torch.randn(3, 8)]  # two levels, three endpoints
    for method in ("linear", "slerp"):
        path = interpolate_path(zs, steps=4, method=method)
        assert [p.shape for p in path] == [(7, 4, 2, 2), (7, 8)] and path_length(3, 4) == 7
        for level, z in zip(path, zs, strict=True):
            assert torch.equal(level[[0, 3, 6]], z)  # endpoint k is frame k * (steps - 1)
    linear = interpolate_path(zs, steps=3, method="linear")[1]
    torch.testing.assert_close(linear[1], (zs[1][0] + zs[1][1]) / 2)
    torch.testing.assert_close(linear[3], (zs[1][1] + zs[1][2]) / 2)
    # slerp of equal-norm endpoints keeps the norm within each segment
    unit = [torch.nn.functional.normalize(torch.randn(3, 8), dim=1)]
    torch.testing.assert_close(interpolate_path(unit, 5, "slerp")[0].norm(dim=1),
                               torch.ones(9))
    with pytest.raises(ValueError, match="at least 2 endpoints"):
        interpolate_path([torch.randn(1, 8)], 4)


def test_three_data_endpoints_strip_gif_and_exact_reconstructions(ckpt, tmp_path):  # noqa: F811
    cfg = compose([f"ckpt={ckpt}", "mode=interpolate", "endpoints=data", "indices=[3,7,1]",
                   "steps=3", "gif_scale=1", f"out={tmp_path}"])
    written = run(cfg)
    assert [p.name for p in written] == ["interpolation-data-3-7-1.png",
                                         "interpolation-data-3-7-1.gif", "settings.json"]
    with Image.open(written[0]) as strip:
        assert strip.size == grid_size(5, nrow=5)  # (3 - 1) * (3 - 1) + 1 frames
    frames = gif_frames(written[1])
    assert len(frames) == 2 * 5 - 2 and frames[0].shape == (32, 32)
    assert np.array_equal(frames[4], cell(written[0], 0, 4))  # the GIF shows the strip's frames
    settings = json.loads(written[-1].read_text())
    assert settings["indices"] == [3, 7, 1] and settings["endpoints"] == "data"
    assert settings["frames_per_row"] == 5 and settings["endpoint_frames"] == [0, 2, 4]
    assert "temperatures" not in settings and "pairs" not in settings
    assert settings["data_config"]["_target_"] == settings["data"]

    model, meta = load_checkpoint(parse_settings(cfg))
    pixels = load_val_images(cfg.data, [3, 7, 1], model.in_shape)
    target = preprocess(pixels, meta["n_bits"], noise=False)
    decoded = path_frames(model, encoded_endpoints(model, pixels, meta["n_bits"]), 3, "slerp")
    assert decoded.shape == (5, 1, 32, 32)
    assert (decoded[[0, 2, 4]] - target).abs().max() < 1e-4  # slerp endpoints: the images
    assert (decoded[1] - target[0]).abs().max() > 1e-2  # between them the frames move
    for k, col in enumerate([0, 2, 4]):  # and the PNG shows them
        assert np.abs(cell(written[0], 0, col).astype(int) - pixels[k, 0].numpy()).max() <= 1


def test_image_file_endpoints_and_their_errors(ckpt, tmp_path):  # noqa: F811
    pixels = load_val_images(compose([f"ckpt={ckpt}"]).data, [0, 1, 2], (1, 32, 32))
    files = []
    for name, image in zip("abc", pixels, strict=True):
        files.append(tmp_path / f"{name}.png")
        Image.fromarray(image[0].numpy()).save(files[-1])
    images = f"images=[{','.join(map(str, files))}]"
    written = run(compose([f"ckpt={ckpt}", "mode=interpolate", images, "steps=2",
                           f"out={tmp_path / 'out'}"]))
    assert [p.name for p in written] == ["interpolation-files-a-b-c.png",
                                         "interpolation-files-a-b-c.gif", "settings.json"]
    for col in range(3):  # steps=2: the frames are the endpoints themselves
        assert np.abs(cell(written[0], 0, col).astype(int) - pixels[col, 0].numpy()).max() <= 1
    settings = json.loads(written[-1].read_text())
    assert settings["endpoints"] == "images" and settings["images"] == list(map(str, files))
    assert "indices" not in settings and "data" not in settings

    Image.new("L", (28, 28)).save(tmp_path / "small.png")
    two = f"images=[{files[0]},{files[1]}]"
    for overrides, message in [
            ([f"images=[{files[0]},{tmp_path / 'small.png'}]"],
             r"small.png is 28x28 but the model takes 32x32 images: resize or crop it"),
            ([f"images=[{files[0]}]"], "images must list two or more image files"),
            (["endpoints=images"], r"endpoints=images needs images=\[...\]"),
            ([two, f"pairs=[[{files[0]},{files[1]}]]"], "images=.* or pairs=.*, not both"),
            ([two, "endpoints=data"], r"endpoints=data but images=\[...\] is given"),
            (["endpoints=data", "indices=[4]"], "indices must be two or more integers")]:
        with pytest.raises(ValueError, match=message):
            run(compose([f"ckpt={ckpt}", "mode=interpolate", *overrides,
                         f"out={tmp_path / 'bad'}"]))
    assert not (tmp_path / "bad").exists()


def test_random_path_through_three_latents_same_seed_same_bytes(ckpt, tmp_path):  # noqa: F811
    def files(name: str, *args: str) -> list[bytes]:
        written = run(compose([f"ckpt={ckpt}", "mode=interpolate", "n_endpoints=3", "steps=4",
                               f"out={tmp_path / name}", *args]))
        return [p.read_bytes() for p in written[:2]]

    first = files("a")
    assert files("b") == first  # PNG and GIF
    assert files("c", "seed=1")[0] != first[0]
    assert files("d", "n_endpoints=2")[0] != first[0]
    with Image.open(tmp_path / "a" / "interpolation-T0.70.png") as strip:
        assert strip.size == grid_size(7, nrow=7)
    settings = json.loads((tmp_path / "a" / "settings.json").read_text())
    assert settings["n_endpoints"] == 3 and settings["temperatures"] == [0.7]
    assert settings["endpoints"] == "random" and "indices" not in settings
    with pytest.raises(ValueError, match="n_endpoints must be an integer >= 2, got 1"):
        files("e", "n_endpoints=1")


def test_grid_of_pairs_rows_gif_and_bytes(ckpt, tmp_path):  # noqa: F811
    data = compose([f"ckpt={ckpt}"]).data
    pixels = load_val_images(data, [0, 1, 2, 3, 4, 5], (1, 32, 32))
    Image.fromarray(pixels[5, 0].numpy()).save(tmp_path / "five.png")
    pairs = f"pairs=[[0,1],[2,3],[4,{tmp_path / 'five.png'}]]"  # indices and a file, mixed

    def pairs_run(name: str, *args: str):
        return run(compose([f"ckpt={ckpt}", "mode=interpolate", pairs, "steps=4", "gif_scale=1",
                            f"out={tmp_path / name}", *args]))

    written = pairs_run("a")
    assert [p.name for p in written] == ["interpolation-pairs.png", "interpolation-pairs.gif",
                                         "settings.json"]
    with Image.open(written[0]) as im:
        assert im.size == grid_size(3 * 4, nrow=4)  # a row of 4 frames per pair
    for row in range(3):  # each row starts and ends at its pair's images
        for col, k in ((0, 2 * row), (3, 2 * row + 1)):
            diff = cell(written[0], row, col).astype(int) - pixels[k, 0].numpy()
            assert np.abs(diff).max() <= 1, (row, col)
    frames = gif_frames(written[1])
    assert len(frames) == 2 * 4 - 2 and frames[0].shape == grid_size(3, nrow=1)[::-1]
    for t in range(4):  # GIF frame t: every row's frame t, in a column
        for row in range(3):
            assert np.array_equal(frames[t][2 + 34 * row:34 + 34 * row, 2:34],
                                  cell(written[0], row, t))
    settings = json.loads(written[-1].read_text())
    assert settings["endpoints"] == "pairs" and settings["frames_per_row"] == 4
    assert settings["pairs"] == [[0, 1], [2, 3], [4, str(tmp_path / "five.png")]]
    assert settings["data_config"]["_target_"] == settings["data"]
    assert [p.read_bytes() for p in pairs_run("b")[:2]] == [p.read_bytes() for p in written[:2]]
    assert pairs_run("c", "method=linear")[0].read_bytes() != written[0].read_bytes()

    for bad, message in [("pairs=[[0,1],[2,3,4]]", "the same number of endpoints"),
                         ("pairs=[[0],[1]]", "pairs must be a list of rows of two or more"),
                         ("pairs=[0,1]", "pairs must be a list of rows"),
                         ("pairs=[[0,1.5]]", "pairs must be a list of rows")]:
        with pytest.raises(ValueError, match=message):
            run(compose([f"ckpt={ckpt}", "mode=interpolate", bad, f"out={tmp_path / 'bad'}"]))
    with pytest.raises(ValueError, match=r"indices \[0, 1, 2, 3000\] out of range"):
        run(compose([f"ckpt={ckpt}", "mode=interpolate", "pairs=[[0,1],[2,3000]]",
                     f"out={tmp_path / 'bad'}"]))
    assert not (tmp_path / "bad").exists()
