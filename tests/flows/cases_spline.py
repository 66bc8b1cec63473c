"""Contract-test cases (tests/flows/cases.py) for the spline layers, merged into its
``CASES``: import ``Case`` (and helpers) from tests.flows.cases.

Tail bounds are small (1-1.5) so that the standard-normal inputs of the contract test fall both
inside the spline and in its identity tails."""

from __future__ import annotations

from flowgen.flows import (
    MLP,
    Checkerboard,
    Coupling,
    CouplingNet,
    Halves,
    RationalQuadraticSpline,
    ResNet,
    mlp_coupling,
)
from tests.flows.cases import Case, context, labels


def vector_spline(features: int, parity: int, bins: int, context_features: int = 0,
                  num_classes: int = 0) -> Coupling:
    return Coupling.build(Halves(parity), features, lambda i, o, k: MLP(i, o, 8, 1, k),
                          RationalQuadraticSpline(bins, tail_bound=1.0), context_features,
                          num_classes, event_kinds=("vector",))


def image_spline(channels: int, bins: int, context_features: int = 0) -> Coupling:
    return Coupling.build(Halves(0), channels, lambda i, o, k: CouplingNet(i, o, 8, k),
                          RationalQuadraticSpline(bins, tail_bound=1.5), context_features,
                          event_kinds=("image",))


def checkerboard_spline() -> Coupling:
    return Coupling.build(Checkerboard(1), 2, lambda i, o, k: ResNet(i, o, 8, 1, k),
                          RationalQuadraticSpline(3, tail_bound=1.0), event_kinds=("image",))


CASES: dict = {
    "spline_coupling_vector": Case(lambda: vector_spline(5, 1, 4), vector=(5,)),
    "spline_coupling_vector_two_bins": Case(lambda: vector_spline(4, 0, 2), vector=(4,)),
    "spline_coupling_vector_context": Case(lambda: vector_spline(4, 0, 3, context_features=2),
                                           vector=(4,), cond=context(2)),
    "spline_coupling_vector_labels": Case(lambda: vector_spline(3, 1, 2, 2, num_classes=3),
                                          vector=(3,), cond=labels(3)),
    "spline_mlp_coupling": Case(lambda: mlp_coupling(5, 0, 8, transform="spline", bins=3,
                                                     tail_bound=1.0), vector=(5,)),
    "spline_mlp_coupling_context": Case(lambda: mlp_coupling(4, 1, 8, 1, "spline", 2, bins=4,
                                                             tail_bound=1.0),
                                        vector=(4,), cond=context(2)),
    "spline_coupling_image": Case(lambda: image_spline(4, 4), image=(4, 3, 3)),
    "spline_coupling_image_odd": Case(lambda: image_spline(3, 2), image=(3, 2, 2)),
    "spline_coupling_image_context": Case(lambda: image_spline(4, 3, context_features=2),
                                          image=(4, 2, 3), cond=context(2)),
    "spline_coupling_checkerboard": Case(checkerboard_spline, image=(2, 3, 3)),
}
