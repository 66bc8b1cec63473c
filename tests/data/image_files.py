"""Image files the tests write by hand or with PIL: 16-bit PNGs (PIL cannot write 16-bit RGB),
decompression-bomb headers and animations."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(path: Path, w: int, h: int, depth: int, colour_type: int, raw: bytes) -> Path:
    header = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))
    return path


def raw_png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG: ``pixels`` uint16 ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB)."""
    h, w = pixels.shape[:2]
    rows = pixels.astype(">u2").reshape(h, -1)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)  # filter byte 0 per row
    return _png(path, w, h, 16, 0 if pixels.ndim == 2 else 2, raw)


def header_only_png(path: Path, w: int, h: int) -> Path:
    """A grey PNG that claims ``w x h`` pixels but holds almost no data (a decompression bomb's
    header: reading it must refuse before decoding)."""
    return _png(path, w, h, 8, 0, b"\0" * 16)


def animated(path: Path, size: int = 4, frames: int = 3) -> Path:
    """An animation of ``frames`` different grey frames (GIF, WebP or APNG by the suffix)."""
    images = [Image.new("L", (size, size), 80 * i) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:])
    return path
