"""The 2-D density picture: training data | learned density | samples, side by side.

Below ``training/`` and ``sampling/`` (both draw it); imports only torch, numpy and PIL.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

__all__ = ["GAP", "TITLE_HEIGHT", "colormap", "data_bounds", "density_panel", "histogram"]

GAP = 4  # white pixels between panels
TITLE_HEIGHT = 14
FLAG = (255, 0, 0)  # non-finite log-density: a red no colormap value reaches

# viridis at 0, 1/8, ..., 1 (perceptually uniform, readable in greyscale)
_VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                     (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], np.float64)

Bounds = tuple[tuple[float, float], tuple[float, float]]


def colormap(values: Tensor) -> np.ndarray:
    """Values in [0, 1] ``[H, W]`` -> uint8 RGB ``[H, W, 3]`` by linear interpolation of viridis."""
    v = values.clamp(0, 1).double().numpy() * (len(_VIRIDIS) - 1)
    low = np.minimum(np.floor(v).astype(int), len(_VIRIDIS) - 2)
    frac = (v - low)[..., None]
    return np.round(_VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac).astype(np.uint8)


def data_bounds(data: Tensor, quantile: float = 0.005, margin: float = 0.1) -> Bounds:
    """A square window ``((x_lo, x_hi), (y_lo, y_hi))`` holding all but ``quantile`` of the
    points ``[N, 2]`` on each side, widened by ``margin`` of its side: outliers do not shrink
    the picture, and both axes share one scale."""
    data = data[data.isfinite().all(1)].double()
    if len(data) == 0:
        raise ValueError("no finite points to take picture bounds from")
    lo, hi = torch.quantile(data, quantile, dim=0), torch.quantile(data, 1 - quantile, dim=0)
    centre, half = (lo + hi) / 2, ((hi - lo).max() / 2).clamp_min(1e-3) * (1 + 2 * margin)
    return tuple((c - half.item(), c + half.item()) for c in centre.tolist())


def pixel_centres(bounds: Bounds, resolution: int) -> Tensor:
    """The centre of every pixel, ``[resolution^2, 2]`` float32 in row-major image order (row 0
    at the top, y decreasing down the rows)."""
    (x0, x1), (y0, y1) = bounds
    step_x, step_y = (x1 - x0) / resolution, (y1 - y0) / resolution
    xs = x0 + step_x * (torch.arange(resolution, dtype=torch.float64) + 0.5)
    ys = y1 - step_y * (torch.arange(resolution, dtype=torch.float64) + 0.5)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], -1).reshape(-1, 2).float()


def histogram(points: Tensor, bounds: Bounds, resolution: int) -> Tensor:
    """Counts ``[resolution, resolution]`` of the points ``[N, 2]`` per pixel (row 0 at the top);
    points outside ``bounds`` or not finite are left out."""
    (x0, x1), (y0, y1) = bounds
    p = points.detach().double().cpu()
    col = torch.floor((p[:, 0] - x0) / (x1 - x0) * resolution)
    row = torch.floor((y1 - p[:, 1]) / (y1 - y0) * resolution)
    keep = (col >= 0) & (col < resolution) & (row >= 0) & (row < resolution)  # NaN: False
    index = (row[keep] * resolution + col[keep]).long()
    return torch.bincount(index, minlength=resolution**2).view(resolution, resolution).double()


def _render(values: Tensor, top: float = 1.0, flagged: Tensor | None = None) -> np.ndarray:
    """Non-negative ``[H, W]`` scaled so that its ``top`` quantile of positive values is the
    brightest, coloured; ``flagged`` pixels red."""
    positive = values[values > 0]
    peak = torch.quantile(positive, top) if len(positive) else values.new_ones(())
    rgb = colormap(values / peak)
    if flagged is not None:
        rgb[flagged.numpy()] = FLAG
    return rgb


def _histogram_panel(points: Tensor, bounds: Bounds, resolution: int) -> Image.Image:
    # bins of 2x2 pixels and the 99th percentile as full scale: 20k points on a 200^2 grid
    # would otherwise be a sparse, dark speckle
    bins = max(resolution // 2, 1)
    rgb = _render(histogram(points, bounds, bins), top=0.99)
    return Image.fromarray(rgb).resize((resolution, resolution), Image.Resampling.NEAREST)


def density_panel(
    data: Tensor,
    log_prob: Callable[[Tensor], Tensor],
    samples: Tensor,
    bounds: Bounds | None = None,
    resolution: int = 200,
    chunk: int = 8192,
    zero_density_ok: bool = False,
) -> tuple[Image.Image, int]:
    """Draw (training data histogram | exp(log_prob) on a grid | samples histogram) over the same
    square window (``bounds``, else :func:`data_bounds` of ``data``), each ``resolution``
    pixels square, titled, on a white sheet ``[TITLE_HEIGHT + resolution, 3 resolution + 2 GAP]``.

    ``log_prob`` maps float32 points ``[M, 2]`` (CPU; at most ``chunk`` at a time) to ``[M]``.
    Returns ``(image, nonfinite)``: the number of grid pixels whose log-density is NaN or
    +-inf, drawn red, as a model whose density overflows must not look merely dark. A density
    with holes in its support (the true checkerboard) passes ``zero_density_ok`` so that
    ``-inf`` draws as zero density and is not counted.
    """
    bounds = bounds or data_bounds(data)
    grid = pixel_centres(bounds, resolution)
    with torch.no_grad():
        log_p = torch.cat([log_prob(part).detach().double().cpu() for part in grid.split(chunk)])
    if log_p.shape != (len(grid),):
        raise ValueError(f"log_prob must map [M, 2] points to [M], got {tuple(log_p.shape)} "
                         f"for M={len(grid)}")
    log_p = log_p.view(resolution, resolution)
    bad = ~log_p.isfinite()
    if zero_density_ok:
        bad &= log_p != -torch.inf
    finite = log_p.isfinite()
    # scaled by the peak before exp: a density is drawn relative to its maximum anyway
    peak = log_p[finite].max() if finite.any() else log_p.new_zeros(())
    density = torch.where(finite, (log_p - peak).exp(), torch.zeros_like(log_p))
    panels = [_histogram_panel(data, bounds, resolution),
              Image.fromarray(_render(density, flagged=bad)),
              _histogram_panel(samples, bounds, resolution)]
    sheet = Image.new("RGB", (3 * resolution + 2 * GAP, TITLE_HEIGHT + resolution), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (title, panel) in enumerate(zip(("data", "density", "samples"), panels, strict=True)):
        left = i * (resolution + GAP)
        sheet.paste(panel, (left, TITLE_HEIGHT))
        draw.text((left + 2, 1), title, fill="black")
    return sheet, int(bad.sum())
