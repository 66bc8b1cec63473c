"""Every invertible layer against brute force, through one parametrised check (as zuko does).
The layers are found by walking ``flowgen.flows``: a concrete :class:`Flow` with no case in
tests/flows/cases.py fails :func:`test_every_concrete_flow_has_a_case`. Each case runs on
vectors and/or images as its ``event_kinds`` say, in float64."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil

import pytest
import torch

import flowgen.flows
from flowgen.flows import Flow, FlowSequence
from flowgen.flows.coupling import AffineCoupling
from flowgen.flows.dense import mlp_coupling
from flowgen.flows.masks import CheckerboardCoupling
from tests.conftest import perturb_
from tests.flows.cases import CASES, context

RUNS = [(name, kind) for name, case in CASES.items() for kind in case.shapes()]
IDS = [f"{name}-{kind}" for name, kind in RUNS]


def concrete_flows() -> set[type]:
    """Every public, non-abstract subclass of :class:`Flow` defined in ``flowgen.flows``."""
    for module in pkgutil.walk_packages(flowgen.flows.__path__, "flowgen.flows."):
        importlib.import_module(module.name)
    found, todo = set(), [Flow]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if (sub.__module__.startswith("flowgen.flows.") and not sub.__name__.startswith("_")
                    and not inspect.isabstract(sub)):
                found.add(sub)
    return found


def covered_class(layer: Flow, classes: set[type]) -> type | None:
    """The library class a case's instance stands for (a test subclass counts as its base)."""
    return next((c for c in type(layer).__mro__ if c in classes), None)


def test_every_concrete_flow_has_a_case():
    classes = concrete_flows()
    covered = {covered_class(case.build(), classes) for case in CASES.values()}
    missing = sorted(c.__module__ + "." + c.__qualname__ for c in classes - covered)
    assert not missing, (f"concrete Flow classes with no case in tests/flows/cases.py: "
                         f"{', '.join(missing)}; add a small instance to CASES")


@pytest.mark.parametrize("name", CASES)
def test_each_case_runs_on_the_event_kinds_it_declares(name):
    case = CASES[name]
    declared = set(case.build().event_kinds)
    assert set(case.shapes()) == declared, f"{name}: the case's shapes vs event_kinds {declared}"


def make(name: str, kind: str, batch: int = 3):
    """(layer in eval mode, x, cond): a float64 instance, data-dependent state initialised by one
    training-mode forward, then every parameter perturbed (the checks then can fail)."""
    case = CASES[name]
    layer = case.build().double()
    x = torch.randn(batch, *case.shapes()[kind], dtype=torch.float64)
    x = case.domain(x) if case.domain else x
    cond = case.cond(batch) if case.cond else None
    layer.train()
    layer(x, cond)  # data-dependent initialisation where a layer has one
    perturb_(layer)
    return layer.eval(), x, cond


def per_sample_logabsdet(fn, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """``log|det J|`` of ``fn(x_i, cond_i)`` per sample, the sample flattened, by autograd."""
    out = []
    for i, xi in enumerate(x):
        ci = None if cond is None else cond[i:i + 1]
        jac = torch.autograd.functional.jacobian(
            lambda v, ci=ci: fn(v.view(1, *x.shape[1:]), ci).reshape(-1), xi.reshape(-1))
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


def round_trip_tolerance(layer: Flow) -> float:
    return layer.inverse_tolerance if layer.inverse_kind == "iterative" else 1e-10


@pytest.mark.parametrize("name,kind", RUNS, ids=IDS)
def test_round_trip_and_logdet_signs(name, kind):
    layer, x, cond = make(name, kind)
    if layer.inverse_kind == "none":
        pytest.skip(f"{name} has no inverse")
    y, logdet = layer(x, cond)
    assert y.shape[0] == x.shape[0] and y.numel() == x.numel()
    assert logdet.shape == (x.shape[0],)
    x_back, logdet_inv = layer.inverse(y, cond)
    torch.testing.assert_close(x_back, x, rtol=0, atol=round_trip_tolerance(layer))
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros_like(logdet), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name,kind", RUNS, ids=IDS)
def test_logdet_matches_brute_force_jacobian(name, kind):
    layer, x, cond = make(name, kind, batch=2)
    if layer.logdet_kind != "exact":
        pytest.skip(f"{name}'s log-determinant is an estimate")
    _, logdet = layer(x, cond)
    expected = per_sample_logabsdet(lambda v, c: layer(v, c)[0], x, cond)
    torch.testing.assert_close(logdet, expected, rtol=0, atol=1e-8)
    if layer.inverse_kind == "none":
        return
    # and the inverse's log-determinant is that of the inverse map's Jacobian
    y = layer(x, cond)[0]
    expected_inv = per_sample_logabsdet(lambda v, c: layer.inverse(v, c)[0], y, cond)
    torch.testing.assert_close(layer.inverse(y, cond)[1], expected_inv, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name,kind", RUNS, ids=IDS)
def test_every_parameter_gets_a_gradient(name, kind):
    layer, x, cond = make(name, kind)
    x.requires_grad_(True)
    y, logdet = layer(x, cond)
    (y.pow(2).sum() + logdet.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name,kind", [r for r in RUNS if CASES[r[0]].cond],
                         ids=[i for i, r in zip(IDS, RUNS, strict=True) if CASES[r[0]].cond])
def test_cond_changes_the_output_and_a_float_cond_gets_a_gradient(name, kind):
    layer, x, cond = make(name, kind)
    other = cond.flip(0) if cond.is_floating_point() else (cond + 1) % (int(cond.max()) + 1)
    y, logdet = layer(x, cond)
    y_other, logdet_other = layer(x, other)
    assert not (torch.allclose(y, y_other) and torch.allclose(logdet, logdet_other))
    if cond.is_floating_point():
        cond = cond.clone().requires_grad_()
        y, logdet = layer(x, cond)
        (y.pow(2).sum() + logdet.sum()).backward()
        assert cond.grad is not None and cond.grad.abs().sum() > 0


@pytest.mark.parametrize("name,kind", RUNS, ids=IDS)
def test_reconstruct_recovers_the_input_and_the_gradients(name, kind):
    """``reconstruct`` (backward without stored activations) gives back ``x`` from ``y`` and the
    same gradients, for input and parameters, as an ordinary forward."""
    layer, x, cond = make(name, kind)
    layer.train()
    x = x.requires_grad_()
    y, logdet = layer(x, cond)
    grad_y, grad_ld = torch.randn_like(y), torch.randn_like(logdet)
    params = [p for p in layer.parameters()]
    pairs = [(o, g) for o, g in ((y, grad_y), (logdet, grad_ld)) if o.requires_grad]
    expected = torch.autograd.grad([o for o, _ in pairs], [x, *params], [g for _, g in pairs],
                                   allow_unused=True)
    leaves, y_again, logdet_again = layer.reconstruct(y.detach(), cond)
    torch.testing.assert_close(torch.cat(leaves, 1), x.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(y_again, y, rtol=0, atol=1e-10)
    outputs = [(o, g) for o, g in ((y_again, grad_y), (logdet_again, grad_ld)) if o.requires_grad]
    got = torch.autograd.grad([o for o, _ in outputs], [*leaves, *params],
                              [g for _, g in outputs], allow_unused=True)
    got = [torch.cat(got[:len(leaves)], 1), *got[len(leaves):]]
    for g, e in zip(got, expected, strict=True):
        if e is None:
            assert g is None or g.abs().max() == 0
        else:
            torch.testing.assert_close(g, e, rtol=0, atol=1e-10)
    layer.eval()


@pytest.mark.parametrize("name,kind", RUNS, ids=IDS)
def test_state_dict_round_trip(name, kind):
    layer, x, cond = make(name, kind)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh = CASES[name].build().double()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    fresh.train()  # a loaded ActNorm must not re-initialise, even in training mode
    y, logdet = layer(x, cond)
    y2, logdet2 = fresh(x, cond)
    torch.testing.assert_close(y2, y, rtol=0, atol=0)
    torch.testing.assert_close(logdet2, logdet, rtol=0, atol=0)


CONDITIONED_SEQUENCES = {  # kind -> (couplings taking a float context [B, 2], sample shape)
    "vector": (lambda: [mlp_coupling(4, 0, 8, context_features=2),
                        mlp_coupling(4, 1, 8, context_features=2)], (4,)),
    "image": (lambda: [AffineCoupling(4, 8, context_features=2),
                       CheckerboardCoupling(4, 1, 8, 1, context_features=2)], (4, 3, 3)),
}


@pytest.mark.parametrize("kind", CONDITIONED_SEQUENCES)
@pytest.mark.parametrize("mode", ["store", "checkpoint", "invertible"])
def test_a_float_cond_gets_its_gradient_under_every_memory_mode(mode, kind):
    build, shape = CONDITIONED_SEQUENCES[kind]
    torch.manual_seed(1)
    flows = [perturb_(f.double()) for f in build()]
    x = torch.randn(3, *shape, dtype=torch.float64)
    cond = context(2)(3)

    def grads(memory: str):
        sequence = FlowSequence(flows, memory=memory).train()
        c, v = cond.clone().requires_grad_(), x.clone().requires_grad_()
        y, logdet = sequence(v, c)
        (y.pow(2).sum() + logdet.sum()).backward()
        return c.grad, v.grad

    (ref_cond, ref_x), (got_cond, got_x) = grads("store"), grads(mode)
    assert ref_cond.abs().sum() > 0
    assert got_cond is not None, f"memory={mode}: no gradient reaches cond"
    torch.testing.assert_close(got_cond, ref_cond, rtol=0, atol=1e-10)
    torch.testing.assert_close(got_x, ref_x, rtol=0, atol=1e-10)
