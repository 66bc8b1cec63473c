"""The one :class:`Coupling` reproduces the four coupling classes it replaced, bit for bit: the
same outputs and log-determinants in both directions (float64 and float32), the same
``reconstruct``, the same state-dict keys, and their checkpoints load (RealNVP's ``scale``
renamed to ``bijection.scale``)."""

from __future__ import annotations

import pytest
import torch

from flowgen.flows import (
    AdditiveCoupling,
    AdditiveMLPCoupling,
    AffineCoupling,
    ChannelMaskedCoupling,
    CheckerboardCoupling,
)
from tests.conftest import perturb_
from tests.flows.legacy_couplings import (
    OldAdditiveCoupling,
    OldAdditiveMLPCoupling,
    OldAffineCoupling,
    OldChannelMaskedCoupling,
    OldCheckerboardCoupling,
)

# name -> (old class, new class, constructor arguments, input shape [C, H, W])
PAIRS = {
    "affine": (OldAffineCoupling, AffineCoupling, (4, 8), (4, 4, 4)),
    "affine_odd": (OldAffineCoupling, AffineCoupling, (5, 8), (5, 3, 3)),
    "affine_bounded": (OldAffineCoupling, AffineCoupling, (4, 8, "bounded"), (4, 3, 3)),
    "additive": (OldAdditiveCoupling, AdditiveCoupling, (5, 8), (5, 3, 3)),
    "checkerboard_even": (OldCheckerboardCoupling, CheckerboardCoupling, (3, 0, 8, 1), (3, 4, 4)),
    "checkerboard_odd": (OldCheckerboardCoupling, CheckerboardCoupling, (2, 1, 8, 2), (2, 3, 5)),
    "channel_even": (OldChannelMaskedCoupling, ChannelMaskedCoupling, (4, 0, 8, 1), (4, 3, 3)),
    "channel_odd": (OldChannelMaskedCoupling, ChannelMaskedCoupling, (5, 1, 8, 1), (5, 2, 2)),
    "nice_even": (OldAdditiveMLPCoupling, AdditiveMLPCoupling, (12, 0, 16, 2), (3, 2, 2)),
    "nice_odd": (OldAdditiveMLPCoupling, AdditiveMLPCoupling, (9, 1, 16, 1), (1, 3, 3)),
}


def pair(name: str, dtype: torch.dtype):
    """(old layer, new layer loaded from the old one's state dict, input)."""
    old_cls, new_cls, args, shape = PAIRS[name]
    old = perturb_(old_cls(*args).to(dtype), 0.3)
    new = new_cls(*args).to(dtype)
    new.load_state_dict(old.state_dict())  # strict: every key of today's checkpoints loads
    return old, new, 2 * torch.randn(3, *shape, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", PAIRS)
def test_new_coupling_gives_the_old_numbers_exactly(name, dtype):
    old, new, x = pair(name, dtype)
    for direction in ("forward", "inverse"):
        y_old, ld_old = getattr(old, direction)(x)
        y_new, ld_new = getattr(new, direction)(x)
        assert y_new.shape == x.shape and ld_new.shape == (x.shape[0],)
        torch.testing.assert_close(y_new, y_old, rtol=0, atol=0)
        torch.testing.assert_close(ld_new, ld_old, rtol=0, atol=0)
    assert not torch.equal(old(x)[0], x)  # the check is not on the identity


@pytest.mark.parametrize("name", PAIRS)
def test_reconstruct_gives_the_old_leaves_and_gradients(name):
    old, new, x = pair(name, torch.float64)
    y = old(x)[0].detach()
    grad_y = torch.randn_like(y)
    results = []
    for layer in (old, new):
        leaves, y_again, logdet = layer.reconstruct(y)
        outputs = [o for o in (y_again, logdet) if o.requires_grad]
        weights = [grad_y if o is y_again else torch.ones_like(o) for o in outputs]
        grads = torch.autograd.grad(outputs, [*leaves, *layer.parameters()], weights,
                                    allow_unused=True)
        n = len(leaves)  # the new one shares the net's evaluation where the old one did not
        results.append((torch.cat(leaves, 1), y_again, logdet,
                        [torch.cat(grads[:n], 1), *grads[n:]]))
    (x_old, y_old, ld_old, g_old), (x_new, y_new, ld_new, g_new) = results
    torch.testing.assert_close(x_new.view(x.shape), x_old.view(x.shape), rtol=0, atol=0)
    torch.testing.assert_close(y_new, y_old, rtol=0, atol=0)
    torch.testing.assert_close(ld_new, ld_old, rtol=0, atol=0)
    assert len(g_new) == len(g_old)  # the parameters in the same order (optimiser states)
    for a, b in zip(g_new, g_old, strict=True):
        if b is None:
            assert a is None or a.abs().max() == 0
        else:
            torch.testing.assert_close(a.view(b.shape), b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", PAIRS)
def test_state_dict_keys_are_todays(name):
    old_cls, new_cls, args, _ = PAIRS[name]
    old_keys = list(old_cls(*args).state_dict())
    new_keys = [k.replace("bijection.scale", "scale") for k in new_cls(*args).state_dict()]
    assert sorted(new_keys) == sorted(old_keys)
    assert [n for n, _ in new_cls(*args).named_parameters()] == \
        [n.replace("scale", "bijection.scale") if n == "scale" else n
         for n, _ in old_cls(*args).named_parameters()]


def test_realnvp_coupling_saves_and_loads_its_own_state():
    layer = perturb_(CheckerboardCoupling(3, 1, hidden_channels=8, res_blocks=1))
    fresh = CheckerboardCoupling(3, 1, hidden_channels=8, res_blocks=1)
    fresh.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)
