"""MaskedAutoregressive (MAF layer) and InverseFlow (IAF): round trips, the cost of each
direction in MADE passes, memory modes and bad input. The contract itself (log-determinants
against autograd) runs in tests/flows/test_contract.py."""

from __future__ import annotations

import pytest
import torch

from flowgen.flows import (
    MADE,
    AdditiveBijection,
    BatchNormFlow,
    FlowSequence,
    InverseFlow,
    MaskedAutoregressive,
    Permutation,
    Squeeze,
    TanhAffineBijection,
)
from flowgen.flows.spline import RationalQuadraticSpline
from tests.conftest import perturb_

BIJECTIONS = {"affine": TanhAffineBijection,
              "spline": lambda _: RationalQuadraticSpline(bins=4, tail_bound=2.0)}


def count_made_passes(module: torch.nn.Module) -> list[int]:
    """A one-element list counting the forward calls of every MADE inside ``module``."""
    calls = [0]
    for sub in module.modules():
        if isinstance(sub, MADE):
            sub.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def layer(features: int = 6, transform: str = "affine", **options) -> MaskedAutoregressive:
    built = MaskedAutoregressive.build(features, BIJECTIONS[transform], hidden_features=24,
                                       **options)
    return perturb_(built.double(), 0.2)


@pytest.mark.parametrize("transform", BIJECTIONS)
@pytest.mark.parametrize("options", [{}, {"residual": True, "order": "random", "seed": 2},
                                     {"hidden_layers": 3, "context_features": 3}],
                         ids=["plain", "residual_random", "deep_context"])
def test_round_trips_to_1e10_in_float64_both_ways(transform, options):
    maf = layer(8, transform, **options).eval()
    cond = torch.randn(50, 3, dtype=torch.float64) if options.get("context_features") else None
    x = 1.5 * torch.randn(50, 8, dtype=torch.float64)
    y, logdet = maf(x, cond)
    assert logdet.abs().max() > 1e-3  # perturbed: not the identity
    x_back, logdet_back = maf.inverse(y, cond)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet_back, -logdet, rtol=0, atol=1e-10)
    iaf = InverseFlow(maf)  # the same map read backwards
    z, logdet_iaf = iaf(y, cond)
    torch.testing.assert_close(z, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(iaf.inverse(z, cond)[0], y, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet_iaf, -logdet, rtol=0, atol=1e-10)


def test_starts_as_the_identity():
    maf = MaskedAutoregressive.build(4, TanhAffineBijection, hidden_features=8, residual=True)
    x = torch.randn(5, 4)
    y, logdet = maf(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(5))


def test_density_takes_one_pass_sampling_d_passes_and_inverse_flow_swaps_them():
    maf = layer(7)
    calls = count_made_passes(maf)
    y, _ = maf(torch.randn(10, 7, dtype=torch.float64))
    assert calls[0] == 1 == maf.forward_passes
    maf.inverse(y)
    assert calls[0] == 1 + 7 and maf.inverse_passes == 7
    iaf = InverseFlow(maf)
    assert (iaf.forward_passes, iaf.inverse_passes) == (7, 1)
    calls[0] = 0
    iaf.inverse(y)
    assert calls[0] == 1


def test_output_entries_depend_only_on_earlier_entries():
    maf = layer(5, order="random", seed=4)
    x = torch.randn(1, 5, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: maf(v)[0], x)[0, :, 0]
    perm = maf.made.order
    in_order = jac[perm][:, perm]
    assert (in_order.triu(1) == 0).all() and (in_order.tril(-1) != 0).any()


@pytest.mark.parametrize("inverse", [False, True], ids=["maf", "iaf"])
def test_memory_invertible_gives_the_stored_gradients(inverse):
    torch.manual_seed(3)
    flows = [layer(4, context_features=2), Permutation.reverse(4), layer(4)]
    flows = [InverseFlow(f) for f in flows] if inverse else flows
    x, cond = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)

    def grads(memory: str):
        sequence = FlowSequence(flows, memory=memory).train()
        sequence.zero_grad()
        y, logdet = sequence(x, cond)
        (y.pow(2).sum() - logdet.sum()).backward()
        return [p.grad.clone() for p in sequence.parameters()]

    for got, expected in zip(grads("invertible"), grads("store"), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_batch_norm_between_layers_refuses_memory_invertible_in_one_line():
    sequence = FlowSequence([layer(3), BatchNormFlow(3), layer(3)])
    with pytest.raises(ValueError, match=r"^BatchNormFlow is not invertible in training mode"):
        sequence.memory = "invertible"
    with pytest.raises(ValueError, match=r"^InverseFlow is not invertible in training mode"):
        FlowSequence([InverseFlow(BatchNormFlow(3))], memory="invertible")


def test_bad_input_is_refused():
    maf = layer(3)
    with pytest.raises(ValueError, match=r"MaskedAutoregressive expects vectors \[B, D\]"):
        maf(torch.randn(2, 3, 1, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"inverse was built for vectors \[B, 3\], got .*\(2, 4\)"):
        maf.inverse(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"gives 2 parameters per entry, the AdditiveBijection "
                                         r"needs 1: build the MADE with params_per_entry=1"):
        MaskedAutoregressive(MADE(3, 2), AdditiveBijection())
    with pytest.raises(ValueError, match=r"cannot tell its output shape"):
        InverseFlow(Squeeze()).output_shape((4, 4, 4))


def test_inverse_flow_refuses_a_flow_without_an_inverse():
    flow = Permutation.reverse(3)
    flow.inverse_kind = "none"
    with pytest.raises(ValueError, match=r"Permutation has no inverse, so InverseFlow has no "
                                         r"forward"):
        InverseFlow(flow)
