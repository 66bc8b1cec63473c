"""read_image on every kind of file it converts or refuses, written here with PIL (or by hand), and
the readers that must use it (image folders, sample.py's image files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flowgen.data.datamodules import ImageFolderDataModule
from flowgen.data.images import read_image
from flowgen.sampling.edit import load_image_files
from tests.data.image_files import animated, header_only_png, raw_png16


def pixels(path: Path, channels: int) -> np.ndarray:
    return np.asarray(read_image(path, channels)).astype(int)


def ramp16(h: int = 8, w: int = 16) -> np.ndarray:
    """Every 16-bit level class: 0, 65535 and values that PIL's 8-bit convert would clip."""
    values = np.linspace(0, 65535, h * w).round().astype(np.uint16).reshape(h, w)
    values[0, 0], values[-1, -1] = 0, 65535
    return values


def test_16bit_grey_is_scaled_not_clipped(tmp_path):
    values = ramp16()
    Image.fromarray(values).save(tmp_path / "g16.png")  # PIL writes mode I;16 as 16-bit PNG
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")  # really 16-bit on disk
    expected = np.round(values / 257)
    np.testing.assert_array_equal(pixels(tmp_path / "g16.png", 1), expected)
    rgb = pixels(tmp_path / "g16.png", 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], expected)
    # by hand (big-endian rows), and as a 32-bit "I" TIFF holding 16-bit values
    np.testing.assert_array_equal(pixels(raw_png16(tmp_path / "raw.png", values), 1), expected)
    Image.fromarray(values.astype(np.int32), "I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(pixels(tmp_path / "i.tif", 1), expected)


def test_16bit_rgb_keeps_its_levels(tmp_path):
    values = np.stack([ramp16(), ramp16()[::-1], np.full((8, 16), 40000, np.uint16)], -1)
    out = pixels(raw_png16(tmp_path / "rgb16.png", values), 3)
    np.testing.assert_allclose(out, values / 257, atol=1)  # PIL keeps the high byte


def test_one_bit_palette_and_transparency(tmp_path):
    bits = Image.new("1", (4, 2), 0)
    bits.putpixel((1, 0), 1)
    bits.save(tmp_path / "bits.png")
    np.testing.assert_array_equal(pixels(tmp_path / "bits.png", 1),
                                  [[0, 255, 0, 0], [0, 0, 0, 0]])

    pal = Image.new("P", (3, 1))
    pal.putpalette([200, 10, 20, 0, 90, 0, 5, 6, 7] + [0] * 759)
    for x in range(3):
        pal.putpixel((x, 0), x)
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(pixels(tmp_path / "pal.png", 3)[0],
                                  [[200, 10, 20], [0, 90, 0], [5, 6, 7]])
    pal.save(tmp_path / "transparent.png", transparency=1)  # index 1 is see-through
    pal.save(tmp_path / "transparent.gif", transparency=1)
    for name in ("transparent.png", "transparent.gif"):
        np.testing.assert_array_equal(pixels(tmp_path / name, 3)[0],
                                      [[200, 10, 20], [255, 255, 255], [5, 6, 7]])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(tmp_path, mode):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (6, 6, 3 if mode == "RGBA" else 1), dtype=np.uint8)
    alpha = rng.integers(0, 256, (6, 6, 1), dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255
    Image.fromarray(np.concatenate([colour, alpha], -1), mode).save(tmp_path / "a.png")
    a = alpha / 255
    expected = colour * a + 255 * (1 - a)
    got = pixels(tmp_path / "a.png", 3 if mode == "RGBA" else 1)
    got = got if mode == "RGBA" else got[..., None]
    np.testing.assert_allclose(got, expected, atol=1)
    assert (got[0, 0] == 255).all()  # fully transparent: the background, not the hidden colour
    np.testing.assert_array_equal(got[0, 1], colour[0, 1])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "red.jpg")  # cyan-free red
    with Image.open(tmp_path / "red.jpg") as im:
        assert im.mode == "CMYK"
    np.testing.assert_allclose(pixels(tmp_path / "red.jpg", 3), np.broadcast_to([255, 0, 0],
                                                                                (8, 8, 3)), atol=8)


@pytest.mark.parametrize(("orientation", "corner"), [(1, (0, 0)), (3, (3, 5)), (6, (0, 3)),
                                                     (8, (5, 0))])
def test_exif_orientation_is_applied(tmp_path, orientation, corner):
    image = Image.new("L", (6, 4), 0)
    image.putpixel((0, 0), 255)  # the top-left pixel as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(tmp_path / "photo.jpg", exif=exif, quality=100)
    out = pixels(tmp_path / "photo.jpg", 1)
    assert out.shape == ((4, 6) if orientation in (1, 3) else (6, 4))
    assert np.unravel_index(out.argmax(), out.shape) == corner


def test_extension_does_not_decide_the_format(tmp_path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "really_a_bmp.png", format="BMP")
    np.testing.assert_array_equal(pixels(tmp_path / "really_a_bmp.png", 3)[0, 0], [1, 2, 3])


def _write_bad(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.png"
    if kind == "animated_gif":
        return animated(tmp_path / "anim.gif")
    if kind == "animated_webp":
        return animated(tmp_path / "anim.webp")
    if kind == "animated_png":
        return animated(path)
    if kind == "float":
        Image.new("F", (4, 4), 0.5).save(path, format="TIFF")
    elif kind == "int32":
        Image.fromarray(np.full((4, 4), 70000, np.int32), "I").save(path, format="TIFF")
    elif kind == "lab":
        Image.new("LAB", (4, 4)).save(path, format="TIFF")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not an image at all")
    elif kind == "truncated":
        Image.new("L", (64, 64), 9).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif kind == "bomb":
        header_only_png(path, 20000, 20000)  # over twice PIL's limit: PIL's own error
    elif kind == "big":
        header_only_png(path, 10000, 9000)  # over the limit, under twice it: PIL only warns
    elif kind == "folder":
        path.mkdir()
    return path


BAD = {
    "animated_gif": r"it is animated or multi-frame \(3 frames\); save the one frame you want",
    "animated_webp": r"it is animated or multi-frame \(3 frames\)",
    "animated_png": r"it is animated or multi-frame \(3 frames\)",
    "float": r"its pixels are of PIL mode F, which flowgen does not read; save it as an 8- or "
             r"16-bit",
    "int32": r"its 32-bit pixels range 70000\.\.70000, not 0\.\.65535",
    "lab": r"its pixels are of PIL mode LAB",
    "empty": r"the file is empty \(0 bytes\); remove or replace it",
    "text": r"not an image format PIL can decode; remove or replace it",
    "truncated": r"image file is truncated.*; remove or replace it",
    "bomb": r"too large to decode safely .*; downscale it first",
    "big": r"it is 10000x9000, more pixels than PIL's decompression-bomb limit .*; downscale",
    "folder": r".*Is a directory.*; remove or replace it",
    "missing": r"no such file; check the path",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_files_are_refused_naming_themselves(tmp_path, kind):
    path = _write_bad(tmp_path, kind) if kind != "missing" else tmp_path / "nope.png"
    for channels in (1, 3):
        with pytest.raises(ValueError, match=rf"^cannot read image {path}: {BAD[kind]}") as err:
            read_image(path, channels)
        assert "\n" not in str(err.value)  # one line, also from inside a worker's traceback


def test_sample_image_files_use_the_reader(tmp_path):
    values = ramp16(8, 8)
    Image.fromarray(values).save(tmp_path / "g16.png")
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(tmp_path / "clear.png")
    x = load_image_files([tmp_path / "g16.png", tmp_path / "clear.png"], (1, 8, 8))
    np.testing.assert_array_equal(x[0, 0].numpy(), np.round(values / 257))
    assert (x[1] == 255).all()
    with pytest.raises(ValueError, match=r"cannot read image .*anim\.gif: it is animated"):
        load_image_files([animated(tmp_path / "anim.gif")], (3, 4, 4))


def test_image_folder_reads_16bit_and_refuses_small_images(tmp_path):
    values = ramp16(16, 16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    dm = ImageFolderDataModule(tmp_path, image_size=16, channels=1, val_fraction=0)
    dm.setup()
    np.testing.assert_array_equal(dm.train_set[0][0][0].numpy(), np.round(values / 257))

    Image.new("L", (16, 12), 7).save(tmp_path / "small.png")  # shorter side 12 < 16
    for upscale in (False, True):
        dm = ImageFolderDataModule(tmp_path, image_size=16, channels=1, val_fraction=0,
                                   upscale=upscale)
        dm.setup()
        index = dm.train_set.files.index(tmp_path / "small.png")
        if upscale:
            assert dm.train_set[index][0].shape == (1, 16, 16)
            continue
        with pytest.raises(ValueError, match=rf"cannot read image {tmp_path / 'small.png'}: it "
                                             rf"is 16x12, smaller than the 16x16 .*lower "
                                             rf"data\.image_size \(now 16\) or pass "
                                             rf"data\.upscale=true"):
            dm.train_set[index]


def test_worker_error_ends_with_the_message(tmp_path):
    # torch re-raises a worker's exception with the worker's traceback as its message: its last
    # line is what the CLI prints (flowgen.cli), so it must be "ValueError: <our one line>"
    Image.new("L", (8, 8), 1).save(tmp_path / "a.png")
    bad = animated(tmp_path / "b.webp")
    dm = ImageFolderDataModule(tmp_path, image_size=4, channels=1, val_fraction=0,
                               batch_size=2, num_workers=1)
    dm.setup()
    with pytest.raises(ValueError, match="DataLoader worker") as err:
        next(iter(dm.train_dataloader()))
    last = str(err.value).strip().splitlines()[-1]
    assert last.startswith(f"ValueError: cannot read image {bad}: it is animated"), last
