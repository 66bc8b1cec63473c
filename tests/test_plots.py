"""The 2-D density picture: three panels of the right size, the same window, non-finite
log-densities counted and drawn red."""

import math

import numpy as np
import pytest
import torch

from flowgen.plots import FLAG, GAP, TITLE_HEIGHT, colormap, data_bounds, density_panel, histogram


def standard_normal(x):
    return -0.5 * x.square().sum(1) - math.log(2 * math.pi)


def panel(image, i, resolution):
    """Pixels ``[resolution, resolution, 3]`` of panel ``i`` (0: data, 1: density, 2: samples)."""
    left = i * (resolution + GAP)
    return np.asarray(image)[TITLE_HEIGHT:, left:left + resolution]


def test_three_panels_of_the_right_size():
    data, window = torch.randn(2000, 2), ((-3.0, 3.0), (-3.0, 3.0))
    image, nonfinite = density_panel(data, standard_normal, torch.randn(2000, 2), bounds=window,
                                     resolution=41)
    assert image.size == (3 * 41 + 2 * GAP, TITLE_HEIGHT + 41) and nonfinite == 0
    for i in range(3):  # each panel is coloured, the gaps white
        assert (panel(image, i, 41) != 255).any(axis=-1).all()
    assert (np.asarray(image)[TITLE_HEIGHT:, 41:41 + GAP] == 255).all()
    density = panel(image, 1, 41)  # pixel 20's centre is the origin: the peak
    assert tuple(density[20, 20]) == tuple(colormap(torch.ones(1, 1))[0, 0])
    assert tuple(density[0, 0]) == tuple(colormap(torch.zeros(1, 1))[0, 0])


def test_nonfinite_log_density_is_counted_and_red():
    def broken(x):  # NaN in the right half, +inf in the top-left quarter
        log_p = standard_normal(x).masked_fill(x[:, 0] > 0, math.nan)
        return log_p.masked_fill((x[:, 0] < 0) & (x[:, 1] > 0), math.inf)

    bounds = ((-2.0, 2.0), (-2.0, 2.0))
    image, nonfinite = density_panel(torch.randn(500, 2), broken, torch.randn(500, 2),
                                     bounds=bounds, resolution=20)
    assert nonfinite == 300
    red = (panel(image, 1, 20) == FLAG).all(-1)
    assert red.sum() == 300 and red[:, 10:].all() and red[:10, :10].all()
    assert not red[10:, :10].any()


def test_minus_infinity_counts_unless_zero_density_is_expected():
    def half_support(x):
        return standard_normal(x).masked_fill(x[:, 0] > 0, -math.inf)

    bounds = ((-2.0, 2.0), (-2.0, 2.0))
    args = (torch.randn(500, 2), half_support, torch.randn(500, 2))
    assert density_panel(*args, bounds=bounds, resolution=10)[1] == 50
    image, nonfinite = density_panel(*args, bounds=bounds, resolution=10, zero_density_ok=True)
    assert nonfinite == 0 and not (panel(image, 1, 10) == FLAG).all(-1).any()


def test_histogram_orientation_and_window():
    bounds = ((0.0, 4.0), (0.0, 4.0))
    points = torch.tensor([[0.5, 3.5], [3.5, 0.5], [3.5, 0.6], [9.0, 1.0], [math.nan, 1.0]])
    counts = histogram(points, bounds, 4)
    assert counts[0, 0] == 1 and counts[3, 3] == 2 and counts.sum() == 3  # y up, outliers out


def test_bounds_are_one_square_window_around_the_data():
    data = torch.cat([torch.rand(10_000, 2) * torch.tensor([4.0, 1.0]), torch.tensor([[1e6, 0]])])
    (x0, x1), (y0, y1) = data_bounds(data)
    assert x1 - x0 == pytest.approx(y1 - y0) and x1 - x0 == pytest.approx(4 * 1.2, rel=0.02)
    assert y0 < 0 and y1 > 1 and x1 < 10  # one far outlier does not set the window


def test_log_prob_must_return_one_value_per_point():
    with pytest.raises(ValueError, match=r"log_prob must map \[M, 2\] points to \[M\]"):
        density_panel(torch.randn(10, 2), lambda x: x, torch.randn(10, 2), resolution=4)
