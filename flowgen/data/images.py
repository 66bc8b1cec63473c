"""The one way flowgen reads an image file: validated, EXIF-rotated, 8-bit grey or RGB.

Every reader of image files (image folders, CelebA, ``sample.py images=[...]``) goes through
:func:`read_image`, so a file is judged by one set of rules and a bad one names itself in a
``ValueError`` (``cannot read image <path>: <what is wrong>; <fix>``), also from inside a
DataLoader worker. The file's content decides its format, never its extension.

Rules, by kind of file:

- 1-bit, grey (L), RGB, palette (P), CMYK and YCbCr: converted by PIL (CMYK naively, without a
  colour profile).
- Alpha (LA, RGBA, PA, palette with a transparent colour): composited onto a white background,
  as a page shows it, so the colour hidden under transparent pixels never leaks in.
- 16-bit grey (I;16*, and I holding 0..65535): scaled to 8 bits, ``round(v * 255 / 65535)``
  (PIL's own conversion clips every value above 255 to white). 16-bit RGB PNGs PIL already
  reads as 8-bit (its high byte).
- Refused: floating-point (F) and other modes (LAB, HSV, 32-bit values), animated or multi-frame
  files, files larger than PIL's decompression-bomb limit, empty and undecodable files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: PIL mode read for a number of channels.
MODES = {1: "L", 3: "RGB"}
#: What transparent pixels become (white: how a page shows an image with alpha).
BACKGROUND = (255, 255, 255)
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_ALPHA = {"LA", "La", "PA", "RGBA", "RGBa"}
_PLAIN = {"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr"}


class ImageFileError(ValueError):
    """A file that is not a usable image; the message names the file and the fix."""

    def __init__(self, path: Path | str, reason: str, fix: str = "remove or replace it") -> None:
        super().__init__(f"cannot read image {path}: {reason}; {fix}")


def read_image(path: Path | str, channels: int) -> Image.Image:
    """The image in ``path`` as an 8-bit PIL image of ``channels`` (1: "L", 3: "RGB"), upright
    (EXIF orientation applied) and fully decoded, or :class:`ImageFileError`."""
    if channels not in MODES:
        raise ValueError(f"images can be read as 1 (grey) or 3 (RGB) channels, not {channels}")
    try:
        if Path(path).stat().st_size == 0:
            raise ImageFileError(path, "the file is empty (0 bytes)")
        with warnings.catch_warnings():
            # refused below with its size and the fix, not PIL's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_header(image, path)
                image = ImageOps.exif_transpose(image)  # a rotated copy, or a plain copy: loads
        return _to_8bit(image, MODES[channels], path)
    except ImageFileError:
        raise
    except FileNotFoundError as e:
        raise ImageFileError(path, "no such file", "check the path") from e
    except Image.DecompressionBombError as e:
        raise ImageFileError(path, f"too large to decode safely ({_one_line(e)})",
                             "downscale it first") from e
    except UnidentifiedImageError as e:
        raise ImageFileError(path, "not an image format PIL can decode") from e
    except Exception as e:  # noqa: BLE001 - PIL's decoders fail in many ways on a bad file
        raise ImageFileError(path, _one_line(e) or type(e).__name__) from e


def check_min_size(image: Image.Image, path: Path | str, min_size: int, fix: str) -> None:
    """Refuse an image whose shorter side is below ``min_size`` (it would be upscaled or
    padded, silently blurring or framing it)."""
    if min(image.size) < min_size:
        raise ImageFileError(path, f"it is {image.width}x{image.height}, smaller than the "
                                   f"{min_size}x{min_size} it is cropped to", fix)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _check_header(image: Image.Image, path: Path | str) -> None:
    """What can be refused before decoding: size, frames, pixel mode."""
    limit = Image.MAX_IMAGE_PIXELS
    w, h = image.size
    if limit is not None and w * h > limit:
        raise ImageFileError(path, f"it is {w}x{h}, more pixels than PIL's decompression-bomb "
                                   f"limit ({limit})", "downscale it first")
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise ImageFileError(path, f"it is animated or multi-frame ({frames} frames)",
                             "save the one frame you want as a still image")
    if image.mode not in _PLAIN | _ALPHA | _SIXTEEN_BIT:
        raise ImageFileError(path, f"its pixels are of PIL mode {image.mode}, which flowgen does "
                                   f"not read", "save it as an 8- or 16-bit grey or RGB image")


def _to_8bit(image: Image.Image, mode: str, path: Path | str) -> Image.Image:
    """A decoded image of any accepted mode -> ``mode`` ("L" or "RGB"), 8 bits per channel."""
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageFileError(path, f"its 32-bit pixels range {values.min()}..{values.max()}, "
                                       f"not 0..65535", "save it as an 8- or 16-bit image")
        # round(v * 255 / 65535): 0 -> 0, 65535 -> 255, evenly in between
        image = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif image.mode in _ALPHA or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba)
    return image.convert(mode)
