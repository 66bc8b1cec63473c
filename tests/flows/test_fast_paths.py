"""The speed options change nothing but speed: channels_last, autocast, the cached inverse."""

from __future__ import annotations

import torch

from flowgen.flows import InvertibleConv1x1, LUInvertibleConv1x1
from flowgen.models import Glow
from tests.conftest import flat, perturb_, trained_like

CONFIG = dict(event_shape=(3, 8, 8), levels=2, steps=2, hidden_channels=16)


def test_channels_last_gives_the_same_log_prob_and_gradients():
    model, x = trained_like(Glow, CONFIG)
    model.train()

    def run(memory_format):
        m = model.to(memory_format=memory_format)
        m.zero_grad(set_to_none=True)
        lp = m.log_prob(x.contiguous(memory_format=memory_format))
        lp.sum().backward()
        return lp.detach(), torch.cat([p.grad.flatten() for p in m.parameters()])

    lp, grads = run(torch.contiguous_format)
    lp_cl, grads_cl = run(torch.channels_last)
    torch.testing.assert_close(lp_cl, lp, rtol=0, atol=1e-10)
    torch.testing.assert_close(grads_cl, grads, rtol=0, atol=1e-10)


def test_autocast_keeps_the_flow_in_float32():
    """Under bf16 autocast only the coupling networks run in bf16: latents and log-determinants
    stay float32, and each layer still inverts to float32 precision (a whole model's round trip
    does not: a 1e-7 difference in a net's input can flip a bf16 rounding; sample in float32)."""
    torch.manual_seed(0)
    model = Glow(**CONFIG)
    x = torch.rand(4, 3, 8, 8) - 0.5
    model.train()
    model.log_prob(x)
    perturb_(model, 0.05)
    model.eval()
    with torch.no_grad():
        lp32 = model.log_prob(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            zs = model.encode(x)  # one latent per level
            lp16 = model.log_prob(x)
            level = model.transform.levels[0]
            step = level.flows[1:4]
            assert [type(f).__name__ for f in step] == ["ActNorm", "LUInvertibleConv1x1",
                                                        "AffineCoupling"]
            h = level.flows[0](x)[0]
            y = h
            for layer in step:
                y = layer(y)[0]
            h_back = y
            for layer in reversed(step):
                assert layer(h_back)[0].dtype == torch.float32
                h_back = layer.inverse(h_back)[0]
    assert all(z.dtype == torch.float32 for z in zs)
    assert lp16.dtype == torch.float32
    assert (h_back - h).abs().max() < 1e-5
    # bf16 nets change the density a little, not the bookkeeping: within a few percent.
    assert ((lp16 - lp32).abs() / lp32.abs()).max() < 0.05


def test_cached_inverse_follows_every_parameter_change():
    for layer in (InvertibleConv1x1(6), LUInvertibleConv1x1(6)):
        perturb_(layer, 0.1)
        y = torch.randn(2, 6, 3, 3)
        with torch.no_grad():
            first = layer.inverse(y)[0]
            assert layer.inverse_weight()[0] is layer.inverse_weight()[0]  # cached
            for p in layer.parameters():  # an optimiser step: in place
                p.add_(0.1)
            moved = layer.inverse(y)[0]
            assert not torch.allclose(moved, first)
            torch.testing.assert_close(layer(moved)[0], y, rtol=0, atol=1e-5)
            layer.load_state_dict({k: v + 0.1 for k, v in layer.state_dict().items()
                                   if k in dict(layer.named_parameters())}, strict=False)
            torch.testing.assert_close(layer(layer.inverse(y)[0])[0], y, rtol=0, atol=1e-5)
        # with autograd on, the inverse is rebuilt (and differentiable) every call
        assert layer.inverse(y)[0].requires_grad


def test_sampling_twice_gives_the_same_images():
    model, _ = trained_like(Glow, CONFIG)
    zs = model.sample_latents(3, 0.7, torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, second = model.decode(zs), model.decode(zs)
    assert torch.equal(first, second)
    torch.testing.assert_close(flat(model.encode(first)), flat(zs), rtol=0, atol=1e-8)
