"""The rational-quadratic spline (flowgen/flows/spline.py) against an independent implementation
and against autograd, in float64.

The oracle is nflows' ``unconstrained_rational_quadratic_spline`` (tails="linear"), the NSF
authors' own code, given the same raw parameters. nflows==0.14 is a dev-only requirement
(requirements-dev.txt); its install_requires pull matplotlib and tensorboard, which the module
used here does not import: ``pip install --no-deps nflows==0.14`` is enough (the .venv has it so),
and without nflows the oracle tests skip. The contract cases of the spline couplings are in
tests/flows/cases_spline.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from flowgen.flows import MLP, Coupling, CouplingNet, FlowSequence, Halves
from flowgen.flows.spline import (
    RationalQuadraticSpline,
    boundary_derivative_raw,
    rq_spline_forward,
    rq_spline_inverse,
)
from tests.conftest import perturb_

F64 = torch.float64
#: (bins, tail bound, scale of the raw parameters): one bin, the defaults, sharp bins
SETTINGS = [(1, 1.0, 1.0), (4, 2.0, 1.0), (8, 3.0, 3.0), (5, 0.5, 6.0)]


def raw(n: int, bins: int, scale: float) -> tuple[torch.Tensor, ...]:
    return (scale * torch.randn(n, bins, dtype=F64), scale * torch.randn(n, bins, dtype=F64),
            scale * torch.randn(n, bins - 1, dtype=F64))


def knots(raw_sizes: torch.Tensor, bound: float, minimum: float = 1e-3) -> torch.Tensor:
    """The paper's knot positions, written out again here: ``[..., K + 1]``."""
    k = raw_sizes.shape[-1]
    sizes = minimum + (1 - minimum * k) * F.softmax(raw_sizes, -1)
    cum = F.pad(torch.cumsum(sizes, -1), (1, 0))
    return (2 * bound * cum - bound)[..., :].clamp(-bound, bound)


def points(params: tuple[torch.Tensor, ...], bound: float, inverse: bool) -> torch.Tensor:
    """Per parameter set, inputs inside the bins, on every knot (ends included) and in both
    tails: ``[n, K + 5]``, each column one kind of point."""
    n = params[0].shape[0]
    at_knots = knots(params[1 if inverse else 0], bound)
    at_knots[:, 0], at_knots[:, -1] = -bound, bound  # exactly the ends, as the spline sets them
    inside = (2 * torch.rand(n, 2, dtype=F64) - 1) * bound
    tails = torch.stack([-bound - 1 - torch.rand(n, dtype=F64),
                         bound + 1e-9 + torch.rand(n, dtype=F64)], 1)
    return torch.cat([inside, at_knots, tails, torch.full((n, 1), -bound - 1e-12, dtype=F64)],
                     1)


def expand(params: tuple[torch.Tensor, ...], columns: int) -> tuple[torch.Tensor, ...]:
    return tuple(p[:, None].expand(-1, columns, -1) for p in params)


@pytest.mark.parametrize("bins,bound,scale", SETTINGS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_matches_nflows_inside_on_knots_and_in_the_tails(bins, bound, scale, inverse):
    rq = pytest.importorskip("nflows.transforms.splines.rational_quadratic")
    params = raw(50, bins, scale)
    v = points(params, bound, inverse)
    full = expand(params, v.shape[1])
    ours = (rq_spline_inverse if inverse else rq_spline_forward)(v, *full, tail_bound=bound)
    theirs = rq.unconstrained_rational_quadratic_spline(
        v, *(p.clone() for p in full), inverse=inverse, tails="linear", tail_bound=bound)
    for got, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    assert (ours[1][:, -3:] == 0).all() and torch.equal(ours[0][:, -3:], v[:, -3:])  # tails


@pytest.mark.parametrize("bins,bound,scale", SETTINGS)
def test_round_trip_and_log_derivatives_match_autograd(bins, bound, scale):
    params = raw(40, bins, scale)
    x = points(params, bound, inverse=False).requires_grad_()
    full = expand(params, x.shape[1])
    y, logabsdet = rq_spline_forward(x, *full, tail_bound=bound)
    (grad,) = torch.autograd.grad(y.sum(), x)  # elementwise: the sum's gradient is dy/dx
    torch.testing.assert_close(logabsdet, grad.log(), rtol=0, atol=1e-10)
    y = y.detach().requires_grad_()
    x_back, logabsdet_inv = rq_spline_inverse(y, *full, tail_bound=bound)
    error = (x_back - x).detach().abs()
    # bins as sharp as scale 6 reach dy/dx ~ 1e-7, where y's rounding alone moves x by ~1e-10
    # (nflows' inverse alike): there the error measured in y (times dy/dx) is what is bounded
    assert (error * logabsdet.detach().exp()).max() < 1e-13
    tol = 1e-10 if scale <= 3 else 1e-8
    assert error.max() < tol
    torch.testing.assert_close(logabsdet_inv, -logabsdet.detach(), rtol=0, atol=tol)
    (grad_inv,) = torch.autograd.grad(x_back.sum(), y)
    torch.testing.assert_close(logabsdet_inv, grad_inv.log(), rtol=0, atol=1e-10)


def test_is_monotone_and_maps_the_interval_onto_itself():
    params = expand(raw(1, 6, 4.0), 2001)
    x = torch.linspace(-2.5, 2.5, 2001, dtype=F64)[None]
    y, _ = rq_spline_forward(x, *params, tail_bound=2.0)
    assert (y.diff() > 0).all()
    ends = rq_spline_forward(torch.tensor([[-2.0, 2.0]], dtype=F64), *expand(raw(1, 6, 4.0), 2),
                             tail_bound=2.0)[0]
    assert ends.tolist() == [[-2.0, 2.0]]


def test_boundary_derivative_is_one():
    for m in (1e-3, 1e-2, 0.5):
        assert abs(m + F.softplus(torch.tensor(boundary_derivative_raw(m), dtype=F64)) - 1) < 1e-15


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)], ids=["vector", "image"])
def test_bijection_zero_parameters_is_the_identity(shape):
    spline = RationalQuadraticSpline(bins=5, tail_bound=2.0)
    x = 2 * torch.randn(*shape, dtype=F64)
    h = x.new_zeros(shape[0], spline.params_per_entry * shape[1], *shape[2:])
    y, logabsdet = spline(x, h)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(logabsdet, torch.zeros_like(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)], ids=["vector", "image"])
def test_bijection_reads_h_in_chunks_along_dim_1(shape):
    """Chunk ``j`` of ``h`` (along dim 1) is parameter ``j`` of every entry: widths, heights,
    then the inner derivatives, these offset so that 0 means a derivative of 1."""
    bins, bound = 3, 1.5
    spline = RationalQuadraticSpline(bins, bound)
    assert spline.params_per_entry == 3 * bins - 1
    x = torch.randn(*shape, dtype=F64)
    h = torch.randn(shape[0], spline.params_per_entry * shape[1], *shape[2:], dtype=F64)
    per_entry = torch.stack(h.chunk(spline.params_per_entry, 1), -1)  # [*x.shape, 3K - 1]
    widths, heights = per_entry[..., :bins], per_entry[..., bins:2 * bins]
    derivatives = per_entry[..., 2 * bins:] + boundary_derivative_raw()
    expected = rq_spline_forward(x, widths, heights, derivatives, bound)
    for got, want in zip(spline(x, h), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    x_back, logabsdet_inv = spline.inverse(expected[0], h)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logabsdet_inv, -expected[1], rtol=0, atol=1e-10)


def test_float32_with_sharp_bins_stays_finite_and_inverts():
    """No NaN from the quadratic's root in float32, even where dy/dx ~ 1e-7 (raw parameters of
    scale 4); the round-trip error, measured in y (times dy/dx), at float32 rounding."""
    spline = RationalQuadraticSpline(8, 3.0)
    x = 2 * torch.randn(64, 4)
    h = 4 * torch.randn(64, 4 * spline.params_per_entry)
    y, logabsdet = spline(x, h)
    x_back, logabsdet_inv = spline.inverse(y, h)
    for t in (y, logabsdet, x_back, logabsdet_inv):
        assert torch.isfinite(t).all()
    assert ((x_back - x).abs() * logabsdet.exp()).max() < 1e-5


@pytest.mark.parametrize("make, match", [
    (lambda: RationalQuadraticSpline(1), "bins >= 2"),
    (lambda: RationalQuadraticSpline(4, tail_bound=0.0), "tail_bound must be"),
    (lambda: RationalQuadraticSpline(4, min_bin_width=0.3), "at most 1/bins"),
    (lambda: RationalQuadraticSpline(4, min_derivative=1.0), "min_derivative"),
])
def test_bad_options_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_parameter_shapes_are_refused():
    spline = RationalQuadraticSpline(4)
    with pytest.raises(ValueError, match=r"needs 11 parameters per entry: h of shape \(2, 33\)"):
        spline(torch.zeros(2, 3), torch.zeros(2, 32))
    with pytest.raises(ValueError, match=r"inner derivatives \[\.\.\., K - 1\]"):
        rq_spline_forward(torch.zeros(2), torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4),
                          1.0)


SEQUENCES = {  # kind -> (spline couplings on both halves, one sample's shape)
    "vector": (lambda: [Coupling.build(Halves(p), 4, lambda i, o, k: MLP(i, o, 8, 1, k),
                                       RationalQuadraticSpline(4, 1.0), event_kinds=("vector",))
                        for p in (0, 1)], (4,)),
    "image": (lambda: [Coupling.build(Halves(p), 4, lambda i, o, k: CouplingNet(i, o, 8, k),
                                      RationalQuadraticSpline(3, 1.0), event_kinds=("image",))
                       for p in (0, 1)], (4, 3, 3)),
}


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("mode", ["checkpoint", "invertible"])
def test_memory_modes_give_the_stored_gradients(mode, kind):
    """memory=invertible recomputes each spline coupling's input from its output: the
    gradients (parameters and input) are those of storing every activation."""
    build, shape = SEQUENCES[kind]
    flows = [perturb_(f.double()) for f in build()]  # 0.5: sharp, ill-conditioned bins
    x = 1.5 * torch.randn(5, *shape, dtype=F64)  # inside the bins and in the tails

    def grads(memory: str) -> torch.Tensor:
        sequence = FlowSequence(flows, memory=memory).train()
        sequence.zero_grad(set_to_none=True)
        v = x.clone().requires_grad_()
        y, logdet = sequence(v)
        (y.pow(2).sum() + logdet.sum()).backward()
        return torch.cat([v.grad.flatten(), *(p.grad.flatten() for p in sequence.parameters())])

    expected = grads("store")
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(grads(mode), expected, rtol=0, atol=1e-10)
