"""Fixtures for every data test: nothing here may touch the network."""

import urllib.request
from urllib.error import URLError

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail loudly instead of touching the network should any code path try to download."""

    def refuse(*args, **kwargs):
        raise URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
