"""MADE (flowgen/flows/made.py): the autoregressive property, read off autograd Jacobians."""

from __future__ import annotations

import pytest
import torch

from flowgen.flows import MADE, MaskedLinear
from flowgen.flows.made import hidden_degrees, input_degrees
from tests.conftest import perturb_

D, P = 5, 3
ORDERS = {"natural": ("natural", 0), "random_seed0": ("random", 0),
          "random_seed7": ("random", 7), "given": ([3, 0, 4, 2, 1], 0)}
CONDS = {"none": (0, 0, lambda b: None),
         "context": (2, 0, lambda b: torch.randn(b, 2, dtype=torch.float64)),
         "labels": (2, 3, lambda b: torch.arange(b) % 3)}


def jacobians(made: MADE, x: torch.Tensor, cond) -> torch.Tensor:
    """``d h / d x`` per sample: ``[B, P * D, D]``."""
    jac = torch.autograd.functional.jacobian(lambda v: made(v, cond), x,
                                           vectorize=True)  # [B, PD, B, D]
    return torch.stack([jac[i, :, i] for i in range(x.shape[0])])


@pytest.mark.parametrize("cond_kind", CONDS)
@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
@pytest.mark.parametrize("hidden_layers", [1, 3])
@pytest.mark.parametrize("order_name", ORDERS)
def test_jacobian_is_strictly_lower_triangular_under_the_order(order_name, hidden_layers,
                                                                residual, cond_kind):
    order, seed = ORDERS[order_name]
    k, classes, make_cond = CONDS[cond_kind]
    made = perturb_(MADE(D, P, hidden_features=30, hidden_layers=hidden_layers,
                         residual=residual, order=order, seed=seed, context_features=k,
                         num_classes=classes).double(), scale=0.5)
    x = torch.randn(16, D, dtype=torch.float64)
    jac = jacobians(made, x, make_cond(16)).abs().sum(0)  # summed over samples: where any lives
    perm = made.order
    if not isinstance(order, str):
        assert perm.tolist() == order
    strictly_lower = torch.ones(D, D).tril(-1).bool()
    for j, chunk in enumerate(jac.split(D)):  # chunk j: parameter j of every entry
        in_order = chunk[perm][:, perm]  # row k: the k-th entry's parameter; column: input
        assert (in_order[~strictly_lower] == 0).all(), f"parameter {j}: depends on later inputs"
        # and nothing the order allows is cut off: every earlier input reaches every parameter
        assert (in_order[strictly_lower] > 0).all(), f"parameter {j}: lost a connection"


@pytest.mark.parametrize("cond_kind", ["context", "labels"])
def test_cond_reaches_every_output_even_the_first_entrys(cond_kind):
    k, classes, make_cond = CONDS[cond_kind]
    made = perturb_(MADE(D, P, 30, context_features=k, num_classes=classes).double())
    x, cond = torch.randn(8, D, dtype=torch.float64), make_cond(8)
    other = cond.flip(0) if cond.is_floating_point() else (cond + 1) % classes
    changed = (made(x, cond) - made(x, other)).abs().sum(0)  # over samples (ReLUs may be off)
    assert (changed > 0).all()


def test_the_last_layer_starts_at_zero():
    made = MADE(D, P, 16, hidden_layers=2, residual=True, context_features=2)
    h = made(torch.randn(4, D), torch.randn(4, 2))
    assert h.shape == (4, P * D) and (h == 0).all()


def test_degrees_and_orders():
    assert input_degrees(4).tolist() == [1, 2, 3, 4]
    assert input_degrees(4, [2, 0, 3, 1]).tolist() == [2, 4, 1, 3]
    random = input_degrees(8, "random", seed=1)
    assert torch.equal(random, input_degrees(8, "random", seed=1))  # seeded: rebuilt the same
    assert not torch.equal(random, input_degrees(8, "random", seed=2))
    assert sorted(random.tolist()) == list(range(1, 9))
    assert hidden_degrees(7, 4).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert hidden_degrees(6, 4, context=True).tolist() == [0, 1, 2, 3, 0, 1]
    assert hidden_degrees(3, 1).tolist() == [0, 0, 0]
    assert MADE(8, order="random", seed=1).order.tolist() == random.argsort().tolist()


def test_masked_linear_masks_weights_and_their_gradients():
    layer = MaskedLinear(torch.tensor([1, 2, 3]), torch.tensor([1, 2]), output=True)
    assert layer.mask.tolist() == [[0, 0, 0], [1, 0, 0]]
    x = torch.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    assert (layer.weight.grad * (1 - layer.mask) == 0).all()
    assert x.grad[:, 1:].abs().sum() == 0  # inputs 2 and 3 reach no output


@pytest.mark.parametrize("build, message", [
    (lambda: MADE(4, order="reverse"), r"order must be one of \['natural', 'random'\]"),
    (lambda: MADE(3, order=[0, 0, 1]), r"order must be a permutation of 0..2"),
    (lambda: MADE(3, hidden_layers=0), r"hidden_layers >= 1"),
    (lambda: MADE(0), r"features >= 1"),
    (lambda: MADE(3, num_classes=4), r"context_features > 0"),
])
def test_bad_construction_is_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"MADE was built for vectors \[B, 3\], got .*\(2, 4\)"):
        MADE(3)(torch.randn(2, 4))
    conditioned = MADE(3, context_features=2, num_classes=3)
    with pytest.raises(ValueError, match=r"MADE is conditioned .*pass cond"):
        conditioned(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"class labels must lie in 0..2"):
        conditioned(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"float context \[B, 2\]"):
        conditioned(torch.randn(2, 3), torch.randn(2, 5))
