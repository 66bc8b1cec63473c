"""The monotonic rational-quadratic (RQ) spline of neural spline flows (Durkan et al. 2019), as
plain functions and as an elementwise :class:`~flowgen.flows.bijections.Bijection`.

On ``[-B, B]`` the map is a spline of ``K`` bins whose knots come from raw parameters exactly as
in the paper (and nflows' ``unconstrained_rational_quadratic_spline`` with linear tails): bin
widths and heights are ``softmax`` of the raw ones, floored at ``min_bin_width`` /
``min_bin_height`` and scaled to ``2B``; the derivatives at the ``K - 1`` inner knots are
``min_derivative + softplus(raw)``, those at ``+-B`` are 1 so that the identity tails outside
``[-B, B]`` join the spline with a continuous derivative. ``x = +-B`` exactly is on the spline.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from flowgen.flows.bijections import Bijection

DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


def boundary_derivative_raw(min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> float:
    """The raw derivative whose ``min_derivative + softplus(.)`` is 1 (nflows' padding)."""
    return math.log(math.expm1(1 - min_derivative))


def _knots(raw: Tensor, bound: float, minimum: float) -> Tensor:
    """``[..., K]`` raw sizes -> ``[..., K + 1]`` knot positions from ``-bound`` to ``bound``."""
    k = raw.shape[-1]
    sizes = minimum + (1 - minimum * k) * F.softmax(raw, dim=-1)
    inner = 2 * bound * torch.cumsum(sizes, dim=-1)[..., :-1] - bound
    # the end knots set exactly: rounding in the cumulative sum must not move the tails' joins
    ends = raw.new_full((*raw.shape[:-1], 1), bound)
    return torch.cat([-ends, inner, ends], dim=-1)


def _pick(values: Tensor, index: Tensor) -> Tensor:
    return values.gather(-1, index).squeeze(-1)


def _bins(v: Tensor, widths: Tensor, heights: Tensor, derivatives: Tensor, bound: float,
          min_bin_width: float, min_bin_height: float, min_derivative: float, inverse: bool
          ) -> tuple[Tensor, ...]:
    """For each entry of ``v`` (``x``, or ``y`` when ``inverse``): whether it lies in ``[-B, B]``,
    and the bin it (0 in the tails) lies in, as ``(inside, v, x_k, w_k, y_k, h_k, delta_k, d_k,
    d_k+1)``."""
    k = widths.shape[-1]
    if min_bin_width * k > 1 or min_bin_height * k > 1:
        raise ValueError(f"min_bin_width and min_bin_height must be at most 1/bins = {1 / k}, "
                         f"got {min_bin_width} and {min_bin_height}")
    if heights.shape[-1] != k or derivatives.shape[-1] != k - 1:
        raise ValueError(f"a spline of K bins takes widths [..., K], heights [..., K] and inner "
                         f"derivatives [..., K - 1], got {tuple(widths.shape)}, "
                         f"{tuple(heights.shape)} and {tuple(derivatives.shape)}")
    xs = _knots(widths, bound, min_bin_width)
    ys = _knots(heights, bound, min_bin_height)
    ends = derivatives.new_full((*derivatives.shape[:-1], 1), boundary_derivative_raw(
        min_derivative))
    d = min_derivative + F.softplus(torch.cat([ends, derivatives, ends], dim=-1))
    # the tails' entries moved to 0, not clamped: clamp's gradient at exactly +-B is 0
    inside = (v >= -bound) & (v <= bound)
    v = torch.where(inside, v, torch.zeros_like(v))
    knots = ys if inverse else xs
    # the bin whose left knot is the last one <= v (a value on a knot starts that knot's bin)
    index = torch.searchsorted(knots[..., 1:-1].contiguous(), v[..., None].contiguous(),
                               right=True)  # contiguous: channels-last images are not
    x_k, y_k = _pick(xs, index), _pick(ys, index)
    w_k, h_k = _pick(xs, index + 1) - x_k, _pick(ys, index + 1) - y_k
    return inside, v, x_k, w_k, y_k, h_k, h_k / w_k, _pick(d, index), _pick(d, index + 1)


def _terms(theta: Tensor, delta: Tensor, d0: Tensor, d1: Tensor) -> tuple[Tensor, Tensor]:
    """``theta (1 - theta)`` and the rational function's denominator (the paper's eq. 4)."""
    one_minus = theta * (1 - theta)
    return one_minus, delta + (d0 + d1 - 2 * delta) * one_minus


def _log_derivative(theta: Tensor, one_minus: Tensor, denominator: Tensor, delta: Tensor,
                    d0: Tensor, d1: Tensor) -> Tensor:
    """``log dy/dx`` at the bin fraction ``theta`` (the paper's eq. 5), given :func:`_terms`."""
    numerator = delta.pow(2) * (d1 * theta.pow(2) + 2 * delta * one_minus
                                + d0 * (1 - theta).pow(2))
    return torch.log(numerator) - 2 * torch.log(denominator)


def rq_spline_forward(x: Tensor, widths: Tensor, heights: Tensor, derivatives: Tensor,
                      tail_bound: float, min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                      min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                      min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> tuple[Tensor, Tensor]:
    """``x`` (any shape ``S``) -> ``(y, log dy/dx)``, both of shape ``S``, given the raw
    ``widths`` ``[*S, K]``, ``heights`` ``[*S, K]`` and inner ``derivatives`` ``[*S, K - 1]``;
    the identity outside ``[-tail_bound, tail_bound]``."""
    inside, v, x_k, w_k, y_k, h_k, delta, d0, d1 = _bins(
        x, widths, heights, derivatives, tail_bound, min_bin_width, min_bin_height,
        min_derivative, inverse=False)
    theta = (v - x_k) / w_k
    one_minus, denominator = _terms(theta, delta, d0, d1)
    y = y_k + h_k * (delta * theta.pow(2) + d0 * one_minus) / denominator
    # where() with both sides finite: the tails' entries get no NaN gradient from the spline side
    logabsdet = _log_derivative(theta, one_minus, denominator, delta, d0, d1)
    return torch.where(inside, y, x), torch.where(inside, logabsdet, torch.zeros_like(x))


def rq_spline_inverse(y: Tensor, widths: Tensor, heights: Tensor, derivatives: Tensor,
                      tail_bound: float, min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                      min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                      min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> tuple[Tensor, Tensor]:
    """The inverse of :func:`rq_spline_forward` for the same raw parameters: ``y`` -> ``(x, log
    dx/dy)``, the second the negated forward log-derivative at ``x``."""
    inside, v, x_k, w_k, y_k, h_k, delta, d0, d1 = _bins(
        y, widths, heights, derivatives, tail_bound, min_bin_width, min_bin_height,
        min_derivative, inverse=True)
    # theta solves a theta^2 + b theta + c = 0 (the paper's eq. 6-8)
    offset, curvature = v - y_k, d0 + d1 - 2 * delta
    a = offset * curvature + h_k * (delta - d0)
    b = h_k * d0 - offset * curvature
    c = -delta * offset
    # 2c / (-b - sqrt(.)): no cancellation where a -> 0 (the quadratic formula's form loses
    # every digit there); the clamp only removes rounding below 0
    discriminant = (b.pow(2) - 4 * a * c).clamp_min(0)
    theta = (2 * c) / (-b - torch.sqrt(discriminant))
    x = theta * w_k + x_k
    logabsdet = -_log_derivative(theta, *_terms(theta, delta, d0, d1), delta, d0, d1)
    return torch.where(inside, x, y), torch.where(inside, logabsdet, torch.zeros_like(y))


class RationalQuadraticSpline(Bijection):
    """The RQ spline of ``bins = K`` bins on ``[-tail_bound, tail_bound]``, identity tails, as an
    elementwise bijection (see :mod:`flowgen.flows.bijections`): ``params_per_entry = 3K - 1``,
    ``h`` stacked in chunks along dim 1, chunk ``j`` holding parameter ``j`` of every
    transformed entry: the ``K`` raw widths, then the ``K`` raw heights, then the ``K - 1`` raw
    inner derivatives (vectors ``[B, P * D]``, images ``[B, P * C, H, W]``).

    ``h = 0`` is the identity map: equal widths and heights, and the inner raw derivatives are
    offset by :func:`boundary_derivative_raw` (the constant nflows pads the end knots with) so
    that every derivative is 1; a coupling whose conditioner ends in a zero layer thus starts as
    the identity. Otherwise the raw parameters reach :func:`rq_spline_forward` unscaled."""

    def __init__(self, bins: int = 8, tail_bound: float = 3.0,
                 min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                 min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                 min_derivative: float = DEFAULT_MIN_DERIVATIVE):
        super().__init__()
        if not isinstance(bins, int) or bins < 2:
            # one bin between end derivatives of 1 is the identity, whatever the parameters
            raise ValueError(f"a spline needs bins >= 2, got {bins!r}")
        if not tail_bound > 0 or not math.isfinite(tail_bound):
            raise ValueError(f"tail_bound must be a finite number > 0, got {tail_bound!r}")
        if min_bin_width * bins > 1 or min_bin_height * bins > 1:
            raise ValueError(f"min_bin_width and min_bin_height must be at most 1/bins = "
                             f"{1 / bins}, got {min_bin_width} and {min_bin_height}")
        if not 0 < min_derivative < 1:
            raise ValueError(f"min_derivative must lie in (0, 1), got {min_derivative}")
        self.bins, self.tail_bound = bins, float(tail_bound)
        self.min_bin_width, self.min_bin_height = min_bin_width, min_bin_height
        self.min_derivative = min_derivative
        self.params_per_entry = 3 * bins - 1

    def extra_repr(self) -> str:
        return f"bins={self.bins}, tail_bound={self.tail_bound}"

    def raw_parameters(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``h`` -> raw ``(widths, heights, derivatives)``, each ``[*x.shape, n]``."""
        p, features = self.params_per_entry, x.shape[1]
        if h.shape[0] != x.shape[0] or h.shape[1] != p * features or h.shape[2:] != x.shape[2:]:
            raise ValueError(f"RationalQuadraticSpline with {self.bins} bins needs {p} "
                             f"parameters per entry: h of shape "
                             f"{(x.shape[0], p * features, *x.shape[2:])} for x of shape "
                             f"{tuple(x.shape)}, got {tuple(h.shape)}")
        params = h.unflatten(1, (p, features)).movedim(1, -1)
        k = self.bins
        derivatives = params[..., 2 * k:] + boundary_derivative_raw(self.min_derivative)
        return params[..., :k], params[..., k:2 * k], derivatives

    def _options(self) -> dict:
        return dict(tail_bound=self.tail_bound, min_bin_width=self.min_bin_width,
                    min_bin_height=self.min_bin_height, min_derivative=self.min_derivative)

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return rq_spline_forward(x, *self.raw_parameters(x, h), **self._options())

    def inverse(self, y: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return rq_spline_inverse(y, *self.raw_parameters(y, h), **self._options())
