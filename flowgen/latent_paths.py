"""Paths between latents (one tensor per level): linear or spherical interpolation through two or
more endpoints. Plain torch, below training/ and sampling/, which both draw such paths."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

#: ``sin(angle)`` below which two latents count as (anti)parallel and slerp falls back to linear.
PARALLEL_EPS = 1e-6


def interpolation_weights(a: Tensor, b: Tensor, t: Tensor, method: str) -> tuple[Tensor, Tensor]:
    """Weights ``(wa, wb)``, ``[steps, P]`` (float64), with ``frame = wa * a + wb * b`` for the
    ``P`` pairs ``a[p], b[p]`` (flattened per pair) and ``t`` in [0, 1] ``[steps]``.

    ``linear``: ``(1 - t, t)``. ``slerp``: ``(sin((1 - t) w) / sin w, sin(t w) / sin w)`` with
    ``w`` the angle between ``a[p]`` and ``b[p]``; linear where ``sin w`` is ~0 (parallel,
    antiparallel or a zero latent). Both give exactly ``a`` at ``t = 0`` and ``b`` at ``t = 1``.
    """
    t = t.to(torch.float64)[:, None]
    linear = (1 - t).expand(-1, a.shape[0]), t.expand(-1, a.shape[0])
    if method == "linear":
        return linear
    if method != "slerp":
        raise ValueError(f"method must be linear or slerp, got {method!r}")
    fa, fb = a.flatten(1).to(torch.float64), b.flatten(1).to(torch.float64)
    norms = fa.norm(dim=1) * fb.norm(dim=1)
    cos = ((fa * fb).sum(1) / norms.clamp_min(torch.finfo(torch.float64).tiny)).clamp(-1, 1)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    parallel = (sin < PARALLEL_EPS) | (norms == 0)
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, linear[0], torch.sin((1 - t) * omega) / safe)
    wb = torch.where(parallel, linear[1], torch.sin(t * omega) / safe)
    return wa, wb


def path_length(n_endpoints: int, steps: int) -> int:
    """Frames of a path through ``n_endpoints`` with ``steps`` frames per segment (both ends
    included, neighbouring segments sharing their endpoint): endpoint ``k`` is frame
    ``k * (steps - 1)``."""
    return (n_endpoints - 1) * (steps - 1) + 1


def interpolate_path(zs: Sequence[Tensor], steps: int, method: str = "slerp") -> list[Tensor]:
    """Per level, the path through the endpoints ``zs`` (one ``[N, *shape]`` latent per level,
    ``N >= 2``) in order: ``[path_length(N, steps), *shape]`` per level. Every segment and
    every level is interpolated on its own; the endpoints are frames, exactly."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both endpoints are frames), got {steps}")
    if zs[0].shape[0] < 2:
        raise ValueError(f"a path needs at least 2 endpoints, got {zs[0].shape[0]}")
    t = torch.arange(steps, dtype=torch.float64) / (steps - 1)  # exactly 0 and 1 at the ends
    frames = []
    for z in zs:
        a, b = z[:-1].double(), z[1:].double()  # the N - 1 segments, all at once
        wa, wb = interpolation_weights(a, b, t, method)  # [steps, N - 1]
        shape = (steps, a.shape[0]) + (1,) * (a.dim() - 1)
        segments = wa.reshape(shape) * a + wb.reshape(shape) * b  # [steps, N - 1, *shape]
        # each segment's last frame is the next one's first: keep it once, segment-major
        body = segments[:-1].transpose(0, 1).reshape(-1, *z.shape[1:])
        frames.append(torch.cat([body, z[-1:].double()]).to(z.dtype))
    return frames


def interpolate_latents(za: Sequence[Tensor], zb: Sequence[Tensor], steps: int,
                        method: str = "slerp") -> list[Tensor]:
    """Per level, ``steps`` frames from ``za`` to ``zb`` (each ``[1, *shape]``, one latent per
    level) -> ``[steps, *shape]`` per level: the path through two endpoints."""
    return interpolate_path([torch.cat([a, b]) for a, b in zip(za, zb, strict=True)], steps,
                            method)
