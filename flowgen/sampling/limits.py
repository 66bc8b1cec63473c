"""Caps on what one ``sample.py`` run holds in memory, so a large ``n`` (or frame count, GIF
scale, batch) fails at once with a message instead of exhausting memory after minutes.

A run computes all its pictures before writing any, so it holds every image of them at once,
each as several copies (noise, decoded float32, pixels, the assembled grid). The caps count
those images, then (once the checkpoint's image shape is known) their values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from flowgen.checks import check_cap

#: Images (grid tiles, frames, edits) one run holds: a grid of 256x256 tiles is unviewable.
MAX_IMAGES = 2**16
#: Their values for the checkpoint's image shape: 2**25 float32 are 128 MB per copy, ~1 GB in
#: all (a 1x32x32 grid up to n=32768, a 3x64x64 one up to n=2730).
PICTURE_VALUES = 2**25
#: Image values decoded in one batch; the model's activations are a multiple of it.
BATCH_VALUES = 2**24
GIF_FIX = "lower gif_scale (the PNG strip keeps every pixel) or the number of frames (steps)"


def _endpoints_per_row(settings) -> int:
    return {"random": settings.n_endpoints, "data": len(settings.indices),
            "images": len(settings.images),
            "pairs": len(settings.pairs[0]) if settings.pairs else 0}[settings.endpoints]


def frames_per_row(settings) -> int:
    """interpolate: frames of one row, both ends of every segment included."""
    return (_endpoints_per_row(settings) - 1) * (settings.steps - 1) + 1


def held_images(settings) -> tuple[str, object, int, str]:
    """(the option to blame, its value, images the run holds at once, how to hold fewer)."""
    temps = len(settings.temperatures)
    if settings.mode == "grid":
        return ("n", settings.n, settings.n * temps,
                "lower n (or give fewer temperatures); for more samples make several runs "
                "with different seed=")
    if settings.mode == "interpolate":
        rows = len(settings.pairs) or 1
        copies = temps if settings.endpoints == "random" else 1
        return ("steps", settings.steps, copies * rows * frames_per_row(settings),
                "use fewer steps, endpoints, rows or temperatures per run")
    count = len(settings.images or settings.indices)
    key = "images" if settings.images else "indices"
    per_image = 2 if settings.mode == "reconstruct" else len(settings.alphas)  # row(s) each
    if settings.mode in ("reconstruct", "manipulate"):
        return (key, f"<{count} entries>", count * per_image,
                f"split the {key} over several runs")
    return ("batch_size", settings.batch_size, 0, "")  # evaluate keeps no pictures


def gif_images(settings) -> int:
    """interpolate: the GIF's frames (forward and back) in image-sized units (scale**2 each)."""
    rows = len(settings.pairs) or 1
    return rows * (2 * frames_per_row(settings) - 2) * settings.gif_scale ** 2


def check_counts(settings) -> None:
    """Shape-free caps, checked with the other settings before the checkpoint is loaded."""
    key, value, images, fix = held_images(settings)
    check_cap(key, value, images, MAX_IMAGES, "images held at once", fix)
    if settings.mode == "interpolate":
        check_cap("gif_scale", settings.gif_scale, gif_images(settings), MAX_IMAGES,
                  "image-sized GIF frames (scale**2 each)", GIF_FIX)


def check_memory(settings, in_shape: Sequence[int]) -> None:
    """The caps in values for the checkpoint's image shape ``[C, H, W]``: call it right after
    loading the checkpoint, before decoding anything. Raises ``ValueError`` naming the option,
    its value, the cap and the fix."""
    per_image = math.prod(in_shape)
    shape = "x".join(map(str, in_shape))
    key, value, images, fix = held_images(settings)
    if key == "n":
        fix = f"n <= {max(PICTURE_VALUES // (per_image * len(settings.temperatures)), 1)} " \
              f"for {shape} images; " + fix
    check_cap(key, value, images * per_image, PICTURE_VALUES,
              f"values held at once ({images:,} images of {shape})", fix)
    if settings.mode == "interpolate":
        check_cap("gif_scale", settings.gif_scale, gif_images(settings) * per_image,
                  PICTURE_VALUES, f"GIF values ({shape} frames scaled "
                  f"{settings.gif_scale}x{settings.gif_scale})", GIF_FIX)
    check_cap("batch_size", settings.batch_size, settings.batch_size * per_image, BATCH_VALUES,
              f"values per decoded batch ({shape} images)",
              f"use batch_size <= {max(BATCH_VALUES // per_image, 1)} (memory only: the "
              f"pictures do not change)")
