"""Contract-test cases (tests/flows/cases.py) for the autoregressive layers, merged into its
``CASES``: import ``Case`` (and helpers) from tests.flows.cases."""

from __future__ import annotations

from flowgen.flows import (
    AffineBijection,
    InverseFlow,
    LUInvertibleConv1x1,
    MaskedAutoregressive,
    RationalQuadraticSpline,
    TanhAffineBijection,
)
from tests.flows.cases import Case, context, labels


def maf(features: int, bijection=TanhAffineBijection, **options) -> MaskedAutoregressive:
    return MaskedAutoregressive.build(features, bijection, hidden_features=8, **options)


CASES: dict = {
    "maf_affine": Case(lambda: maf(4), vector=(4,)),
    "maf_glow_affine_random_order_residual": Case(
        lambda: maf(5, AffineBijection("bounded"), residual=True, order="random", seed=3),
        vector=(5,)),
    "maf_three_hidden_layers_reversed": Case(
        lambda: maf(3, hidden_layers=3, order=[2, 1, 0]), vector=(3,)),
    "maf_context": Case(lambda: maf(4, context_features=2), vector=(4,), cond=context(2)),
    "maf_labels_residual": Case(lambda: maf(3, residual=True, context_features=2,
                                            num_classes=3), vector=(3,), cond=labels(3)),
    "maf_spline": Case(lambda: maf(4, RationalQuadraticSpline(bins=3, tail_bound=1.5)),
                       vector=(4,)),
    "maf_spline_residual_context": Case(
        lambda: maf(3, RationalQuadraticSpline(bins=4, tail_bound=1.0), residual=True,
                    context_features=2), vector=(3,), cond=context(2)),
    "iaf_spline_random_order": Case(
        lambda: InverseFlow(maf(4, RationalQuadraticSpline(bins=3, tail_bound=1.5),
                                order="random", seed=5)), vector=(4,)),
    "iaf_affine": Case(lambda: InverseFlow(maf(4, order="random", seed=1)), vector=(4,)),
    "iaf_labels": Case(lambda: InverseFlow(maf(3, context_features=2, num_classes=3)),
                       vector=(3,), cond=labels(3)),
    "inverse_conv1x1_lu": Case(lambda: InverseFlow(LUInvertibleConv1x1(3)), image=(3, 2, 2),
                               vector=(3,)),
}
