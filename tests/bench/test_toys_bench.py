"""bench/toys.py's code path (issue 14 item 7): the same models on both sides, a few side-by-side
steps that learn, and the acceptance table's PASS/FAIL. zuko is a dev-only dependency: flowgen
itself never imports it."""

from __future__ import annotations

import importlib.util
import math

import pytest

from tests.conftest import ROOT

pytest.importorskip("zuko")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_toys", ROOT / "bench" / "toys.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


toys = _bench()


@pytest.mark.parametrize("model", toys.MODELS)
def test_both_sides_have_the_same_size(model):
    # the same depth, widths and bins: the parameter counts agree to 0.1% (zuko's affine map has
    # no per-feature scale parameter, flowgen's has)
    ours = sum(p.numel() for p in toys.build_flowgen(model, 5.0).parameters())
    theirs = sum(p.numel() for p in toys.build_zuko(model, 5.0).parameters())
    assert abs(ours - theirs) <= 1e-3 * theirs, (ours, theirs)


def test_side_by_side_steps_learn():
    result = toys.run_one("checkerboard", "maf", seed=0, steps=[2, 20], block=7)
    assert result["entropy"] == pytest.approx(math.log(32), abs=1e-9)
    for side in ("flowgen", "zuko"):
        gaps = result[side]["gaps"]
        assert sorted(gaps) == [2, 20]
        assert 0 < gaps[20] < gaps[2], (side, gaps)
        assert result[side]["step_s"] > 0 and result[side]["bad"] == 0


def _fake(toy, model, gap, flowgen_s=1.0):
    side = dict(gaps={1000: gap, 2000: gap}, step_s=flowgen_s, bad=0)
    return dict(toy=toy, model=model, seed=0, entropy=1.0, flowgen=side,
                zuko=dict(side, step_s=1.0))


def test_acceptance_checks_pass_and_fail():
    results = [_fake("checkerboard", "nsf_c", 0.10), _fake("checkerboard", "affine_c", 0.30),
               _fake("two_moons", "nsf_c", 0.05, flowgen_s=1.5)]
    rows, checks = toys.summarise(results, [1000, 2000])
    verdict = {name: result for name, _, result in checks}
    assert verdict["checkerboard nsf_c gap at 2000 <= 0.15"] == "PASS"
    assert verdict["two_moons nsf_c gap at 1000 <= 0.04"] == "FAIL"
    assert verdict["checkerboard nsf_c better than affine_c at 2000"] == "PASS"
    assert verdict["two_moons nsf_c step time <= 1.3x zuko's"] == "FAIL"
    assert verdict["checkerboard nsf_c step time <= 1.3x zuko's"] == "PASS"
    assert len(rows) == 6 and rows[0][4] == "0.100 ± 0.000"
