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


def _refuse(path: Path | str, reason: str, fix: str = "remove or replace it") -> ValueError:
    # a plain ValueError: a DataLoader worker's traceback then ends "ValueError: <message>"
    return ValueError(f"cannot read image {path}: {reason}; {fix}")


def read_image(path: Path | str, channels: int) -> Image.Image:
    """The image in ``path`` as an 8-bit PIL image of ``channels`` (1: "L", 3: "RGB"), upright
    (EXIF orientation applied) and fully decoded, or a ``ValueError`` naming the file."""
    if channels not in MODES:
        raise ValueError(f"images can be read as 1 (grey) or 3 (RGB) channels, not {channels}")
    return _to_8bit(_decode(Path(path)), MODES[channels], path)


def _decode(path: Path) -> Image.Image:
    """The file decoded as PIL reads it (any mode), upright; refused as the module says."""
    try:
        image = _open_upright(path)
    except FileNotFoundError as e:
        raise _refuse(path, "no such file", "check the path") from e
    except Image.DecompressionBombError as e:
        raise _refuse(path, f"too large to decode safely ({_one_line(e)})",
                      "downscale it first") from e
    except UnidentifiedImageError as e:
        raise _refuse(path, "not an image format PIL can decode") from e
    except Exception as e:  # noqa: BLE001 - PIL's decoders fail in many ways on a bad file
        raise _refuse(path, _one_line(e) or type(e).__name__) from e
    if isinstance(image, tuple):
        raise _refuse(path, *image)
    return image


def _open_upright(path: Path) -> Image.Image | tuple[str, str]:
    """The decoded, EXIF-rotated image, or (what is wrong, the fix) when its header refuses it."""
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes)", "remove or replace it"
    with warnings.catch_warnings():
        # a too large image is refused with its size and the fix, not PIL's warning
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            return _header_problem(image) or ImageOps.exif_transpose(image)  # a copy: decodes


def check_min_size(image: Image.Image, path: Path | str, min_size: int, fix: str) -> None:
    """Refuse an image whose shorter side is below ``min_size`` (it would be upscaled or
    padded, silently blurring or framing it)."""
    if min(image.size) < min_size:
        raise _refuse(path, f"it is {image.width}x{image.height}, smaller than the "
                                   f"{min_size}x{min_size} it is cropped to", fix)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _header_problem(image: Image.Image) -> tuple[str, str] | None:
    """(what is wrong, the fix) when the header alone refuses the file: size, frames, mode."""
    limit = Image.MAX_IMAGE_PIXELS
    w, h = image.size
    if limit is not None and w * h > limit:
        return (f"it is {w}x{h}, more pixels than PIL's decompression-bomb limit ({limit})",
                "downscale it first")
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        return (f"it is animated or multi-frame ({frames} frames)",
                "save the one frame you want as a still image")
    if image.mode not in _PLAIN | _ALPHA | _SIXTEEN_BIT:
        return (f"its pixels are of PIL mode {image.mode}, which flowgen does not read",
                "save it as an 8- or 16-bit grey or RGB image")
    return None


def _to_8bit(image: Image.Image, mode: str, path: Path | str) -> Image.Image:
    """A decoded image of any accepted mode -> ``mode`` ("L" or "RGB"), 8 bits per channel."""
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise _refuse(path, f"its 32-bit pixels range {values.min()}..{values.max()}, "
                                       f"not 0..65535", "save it as an 8- or 16-bit image")
        # round(v * 255 / 65535): 0 -> 0, 65535 -> 255, evenly in between
        image = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif image.mode in _ALPHA or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba)
    return image.convert(mode)
