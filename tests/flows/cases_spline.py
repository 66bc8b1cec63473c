"""Contract-test cases (tests/flows/cases.py) for the spline layers, merged into its
``CASES``: import ``Case`` (and helpers) from tests.flows.cases."""

from __future__ import annotations

CASES: dict = {}
