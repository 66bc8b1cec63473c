"""Process-level speed settings."""

from __future__ import annotations

import sys

import pytest
import torch

from flowgen.perf import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_applies_and_changes_no_result():
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    before = torch.relu(x @ x)
    assert keep_freed_memory() is True  # every mallopt call was accepted
    assert torch.equal(torch.relu(x @ x), before)
