"""The autoregressive vector models: model=maf, model=iaf, model=nsf_ar (MAF with splines)."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen.flows import BatchNormFlow, Permutation, set_memory
from flowgen.models import IAF, MAF, build_model, model_metadata
from tests.conftest import brute_force_logabsdet, perturb_
from tests.flows.test_autoregressive import count_made_passes

MODELS = {"maf": MAF, "iaf": IAF}
VARIANTS = {"affine": {}, "spline": {"transform": "spline", "bins": 4, "tail_bound": 3.0},
            "residual_random_actnorm": {"residual": True, "permutation": "random",
                                        "norm": "actnorm"}}


@pytest.mark.parametrize("transform", ["affine", "spline"])
@pytest.mark.parametrize("arch", MODELS)
def test_starts_as_the_identity_under_a_standard_normal(arch, transform):
    model = MODELS[arch]((3,), transform=transform, residual=True).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = -0.5 * (x.pow(2).sum(1) + 3 * math.log(2 * math.pi))
    torch.testing.assert_close(model.log_prob(x), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("arch", MODELS)
def test_round_trip_with_labels_and_rebuild_from_the_record(arch, variant):
    torch.manual_seed(0)
    model = MODELS[arch]((4,), layers=3, hidden_features=16, num_classes=3,
                         **VARIANTS[variant]).double()
    model.train()
    model(torch.randn(8, 4, dtype=torch.float64), torch.arange(8) % 3)  # ActNorm's init
    perturb_(model, 0.1).eval()
    x, labels = torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(model.decode(model.encode(x, labels), labels), x, rtol=0,
                               atol=1e-10)
    assert not torch.allclose(model.log_prob(x, labels), model.log_prob(x, labels.roll(1)))
    meta = model_metadata(model, 8)
    assert meta["arch"] == arch and meta["config"]["layers"] == 3
    rebuilt = build_model(meta["arch"], meta["config"]).double()
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    torch.testing.assert_close(rebuilt.log_prob(x, labels), model.log_prob(x, labels),
                               rtol=0, atol=0)


@pytest.mark.parametrize("variant", [*VARIANTS, "batchnorm"])
@pytest.mark.parametrize("arch", MODELS)
def test_log_prob_matches_the_brute_force_jacobian(arch, variant):
    options = VARIANTS.get(variant, {"norm": "batchnorm"})
    model = MODELS[arch]((3,), layers=3, hidden_features=16, **options).double().train()
    model(torch.randn(16, 3, dtype=torch.float64))  # the norms' data-dependent state
    perturb_(model, 0.1).eval()
    x = torch.randn(2, 3, dtype=torch.float64)
    zs, logdet = model(x)
    expected = brute_force_logabsdet(lambda v: model(v)[0][0], x)
    torch.testing.assert_close(logdet, expected, rtol=0, atol=1e-8)
    normal = torch.distributions.Normal(0.0, 1.0).log_prob(zs[0]).sum(1)
    torch.testing.assert_close(model.log_prob(x), normal + expected, rtol=0, atol=1e-8)


def test_records_its_arguments():
    assert IAF((2,)).config == {"event_shape": [2], "layers": 5, "hidden_features": 64,
                                "hidden_layers": 2, "residual": False, "transform": "affine",
                                "bins": 8, "tail_bound": 3.0, "permutation": "reverse",
                                "norm": "none", "num_classes": 0, "logit_alpha": None}


def test_iaf_samples_in_one_pass_per_layer_maf_evaluates_density_in_one():
    """The acceptance: 10,000 IAF samples and a MAF density take ``layers`` MADE evaluations
    (one per layer); the slow directions take ``D`` per layer."""
    layers, d = 3, 4
    iaf, maf = IAF((d,), layers=layers).eval(), MAF((d,), layers=layers).eval()
    iaf_calls, maf_calls = count_made_passes(iaf), count_made_passes(maf)
    samples = iaf.sample(10_000)
    assert samples.shape == (10_000, d) and iaf_calls[0] == layers
    maf.log_prob(samples)
    assert maf_calls[0] == layers
    iaf_calls[0] = maf_calls[0] = 0
    iaf.log_prob(samples)
    maf.sample(100)
    assert iaf_calls[0] == maf_calls[0] == layers * d


@pytest.mark.parametrize("arch", MODELS)
def test_layout_between_layers(arch):
    model = MODELS[arch]((3,), layers=3, norm="batchnorm", permutation="random")
    kinds = [type(f).__name__ for f in model.transform.flows]
    layer = "MaskedAutoregressive" if arch == "maf" else "InverseFlow"
    assert kinds == [layer, "BatchNormFlow", "Permutation"] * 2 + [layer]
    perms = [f.perm.tolist() for f in model.transform.flows if isinstance(f, Permutation)]
    # drawn from the layer's index: the same every build
    again = MODELS[arch]((3,), layers=3, norm="batchnorm", permutation="random")
    assert perms == [f.perm.tolist() for f in again.transform.flows
                     if isinstance(f, Permutation)]
    assert any(isinstance(f, BatchNormFlow) for f in model.transform.flows)


def test_memory_invertible_trains_maf_and_refuses_batch_norm_in_one_line():
    set_memory(MAF((2,), layers=2), "invertible")  # MAF's inverse is exact: allowed
    with pytest.raises(ValueError, match=r"^BatchNormFlow is not invertible in training mode.*"
                                         r"memory=store or memory=checkpoint$"):
        set_memory(MAF((2,), layers=2, norm="batchnorm"), "invertible")


@pytest.mark.parametrize("options, message", [
    ({"event_shape": (2, 8)}, r"MAF models vectors \(D,\) or images \(C, H, W\)"),
    ({"layers": 0}, r"layers must be an integer >= 1, got 0"),
    ({"hidden_features": "abc"}, r"hidden_features must be an integer >= 1, got 'abc'"),
    ({"num_classes": 1.5}, r"num_classes must be an integer >= 0, got 1.5"),
    ({"transform": "additive"}, r"transform must be one of \['affine', 'spline'\]"),
    ({"permutation": "shuffle"}, r"permutation must be one of \['reverse', 'random'\]"),
    ({"norm": "layernorm"}, r"norm must be one of \['none', 'batchnorm', 'actnorm'\]"),
    ({"transform": "spline", "bins": 0}, r"bins must be an integer >= 1, got 0"),
    ({"hidden_layers": 0}, r"hidden_layers must be an integer >= 1, got 0"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        MAF(**{"event_shape": (2,), **options})
    if "event_shape" in options:
        with pytest.raises(ValueError, match=r"IAF models vectors"):
            IAF(**options)
