"""2-D toy distributions: the standard generators of FFJORD (Grathwohl et al., 2019) and nflows.

Every toy draws ``sample(n, generator) -> [n, 2]`` float32, deterministic given the
``torch.Generator``. Where the density is known in closed form or by quadrature (two moons,
eight Gaussians, checkerboard, rings) it also gives ``log_prob(x [N, 2]) -> [N]`` in nats (float64)
and ``entropy()``, the Monte Carlo ``-E[log p(x)]``: the floor a model's NLL in nats can reach.

Where FFJORD draws by position (``linspace`` angles, equal counts per mode) these draw the same
distribution i.i.d. (uniform angle, uniform mode), so that the stated density is exactly the law
of every sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["TOYS", "Checkerboard", "EightGaussians", "Pinwheel", "Rings", "Spirals", "Toy",
           "TwoMoons"]

_F64 = torch.float64


class Toy:
    """A distribution on R^2. Subclasses implement ``_draw`` and, where known, ``log_prob``."""

    has_density: bool = False

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` i.i.d. points ``[n, 2]`` float32, drawn from ``generator`` (CPU) alone."""
        if n < 0:
            raise ValueError(f"cannot draw {n} points")
        return self._draw(n, generator).float()

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        """The true log-density (nats) at ``x [N, 2]``, as float64 ``[N]``."""
        raise NotImplementedError(f"{type(self).__name__} has no known density")

    def entropy_estimate(self, n: int = 200_000, seed: int = 0) -> tuple[float, float]:
        """(entropy in nats, its Monte Carlo standard error) from ``n`` fresh samples."""
        x = self.sample(n, torch.Generator().manual_seed(seed))
        return mc_entropy(self.log_prob(x))

    def entropy(self, n: int = 200_000, seed: int = 0) -> float:
        """Monte Carlo ``-mean(log p(x))`` in nats over ``n`` samples drawn from ``seed``."""
        return self.entropy_estimate(n, seed)[0]


def mc_entropy(log_p: Tensor) -> tuple[float, float]:
    """(``-mean(log_p)``, its standard error) for ``log_p [N]`` of samples of the density."""
    log_p = log_p.double()
    n = len(log_p)
    if n < 2:
        raise ValueError(f"a Monte Carlo entropy needs at least 2 samples, got {n}")
    return -log_p.mean().item(), log_p.std().item() / math.sqrt(n)


def _normal_log_prob(sq_dist: Tensor, std: float) -> Tensor:
    """log N(x; c, std^2 I) in 2-D from ``|x - c|^2``."""
    return -sq_dist / (2 * std**2) - math.log(2 * math.pi * std**2)


def _chunked(fn, x: Tensor, chunk: int) -> Tensor:
    # bounds memory: the quadrature holds [chunk, nodes] float64 at once
    x = x.to(_F64)
    return torch.cat([fn(part) for part in x.split(chunk)]) if len(x) else x.new_zeros(0)


@dataclass(frozen=True)
class TwoMoons(Toy):
    """sklearn's ``make_moons`` scaled as in FFJORD: ``x = scale * (arc_m(t) + noise * e) + shift``
    with ``m`` one of two moons (prob 1/2), ``t ~ U(0, pi)``, ``e ~ N(0, I)``; the upper arc is
    ``(cos t, sin t)``, the lower ``(1 - cos t, 1/2 - sin t)``. Density: the mixture over ``m``
    and ``t`` of ``N(scale * arc_m(t) + shift, (scale * noise)^2 I)``; defaults: std 0.2 about
    arcs of radius 2. ``log_prob`` integrates ``t`` by composite Gauss-Legendre quadrature in
    float64 (``panels`` x ``order`` nodes per moon; against 6,400 nodes the error is below 1e-9
    nats on [-4, 4]^2, 2e-5 on [-8, 8]^2 where log p reaches -1000)."""

    noise: float = 0.1
    scale: float = 2.0
    shift: tuple[float, float] = (-1.0, -0.2)
    panels: int = 16
    order: int = 16
    has_density = True

    def _arcs(self, t: Tensor, lower: Tensor) -> Tensor:
        upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
        down = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
        arc = torch.where(lower[:, None], down, upper)
        return self.scale * arc + torch.tensor(self.shift, dtype=_F64)

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        lower = torch.rand(n, generator=generator, dtype=_F64) < 0.5
        t = math.pi * torch.rand(n, generator=generator, dtype=_F64)
        e = torch.randn(n, 2, generator=generator, dtype=_F64)
        return self._arcs(t, lower) + self.scale * self.noise * e

    def _nodes(self) -> tuple[Tensor, Tensor]:
        """Arc points of both moons ``[2K, 2]`` and log mixture weights ``[2K]`` (sum to 1)."""
        g, w = np.polynomial.legendre.leggauss(self.order)
        edges = np.linspace(0.0, math.pi, self.panels + 1)
        half = (edges[1:] - edges[:-1])[:, None] / 2
        t = torch.tensor(((edges[:-1, None] + half) + half * g).ravel())
        log_w = torch.tensor(np.log((half * w).ravel() / (2 * math.pi)))  # 1/2 * 1/pi * dt
        lower = torch.arange(2 * len(t)) >= len(t)
        return self._arcs(t.repeat(2), lower), log_w.repeat(2)

    def log_prob(self, x: Tensor) -> Tensor:
        centres, log_w = self._nodes()
        s2 = (self.scale * self.noise) ** 2
        # -|x - c|^2 / 2s^2 = x.c / s^2 - |c|^2 / 2s^2 - |x|^2 / 2s^2: one [N, 3] x [3, 2K] matmul
        # per chunk instead of a pairwise distance (float64 keeps the cancellation below 1e-12)
        offset = log_w - centres.square().sum(1) / (2 * s2)
        weights = torch.cat([centres / s2, offset[:, None]], 1)

        def part(xs: Tensor) -> Tensor:
            exponent = torch.cat([xs, xs.new_ones(len(xs), 1)], 1) @ weights.T
            return (torch.logsumexp(exponent, dim=1) - xs.square().sum(1) / (2 * s2)
                    - math.log(2 * math.pi * s2))

        return _chunked(part, x, 4096)


@dataclass(frozen=True)
class EightGaussians(Toy):
    """FFJORD's eight Gaussians: an equal-weight mixture of ``N(c_k, std^2 I)``, ``c_k`` at angles
    ``k pi/4`` on a circle of ``radius``. Defaults: FFJORD's radius 4 and std 0.5, both divided
    by sqrt(2) (FFJORD divides by 1.414): radius 2.83, std 0.354. Density: that mixture, exact."""

    radius: float = 4 / math.sqrt(2)
    std: float = 0.5 / math.sqrt(2)
    has_density = True

    def centres(self) -> Tensor:
        angle = torch.arange(8, dtype=_F64) * math.pi / 4
        return self.radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        k = torch.randint(8, (n,), generator=generator)
        return self.centres()[k] + self.std * torch.randn(n, 2, generator=generator, dtype=_F64)

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.to(_F64)
        sq = torch.cdist(x, self.centres()).square()
        return torch.logsumexp(_normal_log_prob(sq, self.std), dim=1) - math.log(8)


@dataclass(frozen=True)
class Checkerboard(Toy):
    """FFJORD's checkerboard: uniform on the 8 squares of side 2 of a 4x4 board on [-4, 4]^2 where
    ``floor(x/2) + floor(y/2)`` is even. Density: 1/32 there, 0 elsewhere (entropy log 32)."""

    has_density = True
    area: float = 32.0

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        x = 4 * torch.rand(n, generator=generator, dtype=_F64) - 2
        coin = torch.randint(2, (n,), generator=generator).to(_F64)
        y = torch.rand(n, generator=generator, dtype=_F64) - 2 * coin + torch.floor(x) % 2
        return 2 * torch.stack([x, y], 1)

    def log_prob(self, x: Tensor) -> Tensor:
        half = x.to(_F64) / 2
        # closed squares: a float32 sample rounded onto an edge (1.99999999 -> 2.0) stays inside
        inside = torch.zeros(len(half), dtype=torch.bool)
        for cx in (torch.floor(half[:, 0]), torch.ceil(half[:, 0]) - 1):
            for cy in (torch.floor(half[:, 1]), torch.ceil(half[:, 1]) - 1):
                on_board = (cx >= -2) & (cx <= 1) & (cy >= -2) & (cy <= 1)
                inside |= on_board & ((cx + cy) % 2 == 0)
        log_p = torch.full(inside.shape, -math.log(self.area), dtype=_F64)
        return log_p.masked_fill(~inside, -math.inf)


@dataclass(frozen=True)
class Rings(Toy):
    """FFJORD's rings: four concentric circles of radius 3, 2.25, 1.5, 0.75 (one chosen uniformly,
    a uniform angle) plus ``N(0, noise^2 I)``, noise 0.08. Density: per ring, the angle integrates
    in closed form, ``exp(-(r^2 + R^2) / 2s^2) I0(r R / s^2) / (2 pi s^2)``; an equal mixture."""

    radii: tuple[float, ...] = (3.0, 2.25, 1.5, 0.75)
    noise: float = 0.08
    has_density = True

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        radius = torch.tensor(self.radii, dtype=_F64)[
            torch.randint(len(self.radii), (n,), generator=generator)]
        angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=_F64)
        ring = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return ring + self.noise * torch.randn(n, 2, generator=generator, dtype=_F64)

    def log_prob(self, x: Tensor) -> Tensor:
        r = x.to(_F64).norm(dim=1, keepdim=True)
        radius, s2 = torch.tensor(self.radii, dtype=_F64), self.noise**2
        # i0e(z) = exp(-z) I0(z): the exponent -(r - R)^2 / 2s^2 stays finite far from the ring
        log_i0e = torch.log(torch.special.i0e(r * radius / s2))
        per_ring = -(r - radius).square() / (2 * s2) + log_i0e - math.log(2 * math.pi * s2)
        return torch.logsumexp(per_ring, dim=1) - math.log(len(self.radii))


@dataclass(frozen=True)
class Pinwheel(Toy):
    """FFJORD's pinwheel: 5 arms; per arm ``k`` (uniform), ``f ~ N((1, 0), diag(0.3, 0.1)^2)`` is
    rotated by ``2 pi k / 5 + 0.25 exp(f_0)`` and scaled by 2. Density not given in closed form."""

    arms: int = 5
    radial_std: float = 0.3
    tangential_std: float = 0.1
    rate: float = 0.25

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        k = torch.randint(self.arms, (n,), generator=generator)
        f = torch.randn(n, 2, generator=generator, dtype=_F64)
        f = f * torch.tensor([self.radial_std, self.tangential_std], dtype=_F64)
        f[:, 0] += 1
        angle = 2 * math.pi * k / self.arms + self.rate * torch.exp(f[:, 0])
        cos, sin = torch.cos(angle), torch.sin(angle)
        # FFJORD's einsum("ti,tij->tj", f, [[cos, -sin], [sin, cos]])
        return 2 * torch.stack([f[:, 0] * cos + f[:, 1] * sin, f[:, 1] * cos - f[:, 0] * sin], 1)


@dataclass(frozen=True)
class Spirals(Toy):
    """FFJORD's two spirals: ``u = 3 pi sqrt(U)`` (540 degrees), the point
    ``(-u cos u + U'/2, u sin u + U''/2)`` or its negation (prob 1/2), divided by 3, plus
    ``N(0, 0.1^2 I)``. Density not given in closed form (uniform jitter convolved with noise)."""

    noise: float = 0.1

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        u = 3 * math.pi * torch.sqrt(torch.rand(n, generator=generator, dtype=_F64))
        jitter = 0.5 * torch.rand(n, 2, generator=generator, dtype=_F64)
        arm = torch.stack([-torch.cos(u) * u, torch.sin(u) * u], 1) + jitter
        sign = torch.where(torch.rand(n, generator=generator, dtype=_F64) < 0.5, -1.0, 1.0)
        noise = self.noise * torch.randn(n, 2, generator=generator, dtype=_F64)
        return sign[:, None].to(_F64) * arm / 3 + noise


TOYS: dict[str, Toy] = {
    "two_moons": TwoMoons(),
    "eight_gaussians": EightGaussians(),
    "checkerboard": Checkerboard(),
    "pinwheel": Pinwheel(),
    "rings": Rings(),
    "spirals": Spirals(),
}
