"""memory=checkpoint|invertible (a training option): the same gradients as storing every
activation."""

from __future__ import annotations

import pytest
import torch

from flowgen.flows import FlowSequence, set_memory
from flowgen.models import Glow
from tests.conftest import trained_like

CONFIGS = {
    "affine": dict(event_shape=(3, 8, 8), levels=2, steps=3, hidden_channels=16),
    "additive-conditional": dict(event_shape=(1, 8, 8), levels=2, steps=2,
                                 hidden_channels=8, coupling="additive", num_classes=3,
                                 condition_splits=True),
}


def gradients(model: Glow, mode: str, x: torch.Tensor, cond: torch.Tensor | None):
    """(d loss / d parameters, d loss / d x) with every level in ``mode``, training mode."""
    for level in model.transform.levels:
        level.memory = mode
    model.train()
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    loss = -model.log_prob(x, cond).mean()
    loss.backward()
    grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
             for p in model.parameters()]
    return torch.cat([g.flatten() for g in grads]), x.grad.clone(), loss.detach()


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("mode", ["checkpoint", "invertible"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_memory_modes_give_the_default_gradients(name, mode, dtype, tol):
    config = CONFIGS[name]
    model, x = trained_like(Glow, config, scale=0.1)  # ActNorm initialised, generic weights
    model = model.to(dtype)
    x = x.to(dtype)
    cond = torch.tensor([0, 2, 1]) if config.get("num_classes") else None
    ref_params, ref_x, ref_loss = gradients(model, "store", x, cond)
    params, grad_x, loss = gradients(model, mode, x, cond)
    assert loss == ref_loss
    assert ref_params.abs().max() > 1e-3  # the check is not on vanishing gradients
    # Relative to the largest gradient: float32 rounding of the reconstructed inputs.
    assert (params - ref_params).abs().max() <= tol * ref_params.abs().max()
    assert (grad_x - ref_x).abs().max() <= tol * ref_x.abs().max()


def test_invertible_mode_keeps_only_level_outputs():
    """What autograd saves for backward: with memory=invertible no coupling-network activation
    (hidden_channels wide) is kept, so saved memory stays flat as the number of steps grows."""
    def saved_bytes(mode: str, steps: int) -> int:
        torch.manual_seed(0)
        model = Glow((3, 16, 16), levels=2, steps=steps, hidden_channels=64)
        set_memory(model, mode)
        x = torch.rand(2, 3, 16, 16) - 0.5
        model.train()
        model.log_prob(x)  # ActNorm init outside the measurement
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.log_prob(x).sum()
        return total

    store = [saved_bytes("store", k) for k in (2, 8)]
    invertible = [saved_bytes("invertible", k) for k in (2, 8)]
    assert store[1] > 3 * store[0]  # stored activations grow with K ...
    assert invertible[1] == invertible[0]  # ... the invertible mode's do not
    assert invertible[1] < store[1] / 10


def test_memory_mode_is_checked_and_ignored_outside_training():
    with pytest.raises(ValueError, match="memory must be one of"):
        FlowSequence([], memory="recompute")
    model = Glow((1, 8, 8), levels=2, steps=1, hidden_channels=8)
    set_memory(model, "invertible")
    x = torch.rand(2, 1, 8, 8) - 0.5
    model.train()
    model.log_prob(x)
    model.eval()
    with torch.no_grad():
        eval_lp = model.log_prob(x)
    for level in model.transform.levels:
        level.memory = "store"
    with torch.no_grad():
        assert torch.equal(model.log_prob(x), eval_lp)


def test_invertible_mode_refuses_batch_statistics():
    from flowgen.flows import set_memory
    from flowgen.models.realnvp import RealNVP

    model = RealNVP(event_shape=(1, 8, 8), levels=2, hidden_channels=8, res_blocks=1)
    # refused when the mode is set (from the layers' declared capabilities), not mid-training
    with pytest.raises(ValueError, match="BatchNormFlow is not invertible in training mode"):
        set_memory(model, "invertible")
