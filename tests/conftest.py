"""Shared pytest fixtures: the codec backends and the hypothesis profiles.

``codec`` runs a test once per backend (ids ``pure`` and ``native``; select one
with ``-k pure``). The native backend must import: a missing build fails the test
instead of skipping it, because ``make test`` always builds it.

Hypothesis profiles: ``default`` (200 examples) and ``sanitize`` (50 examples,
for the slow AddressSanitizer build), both derandomized so runs are repeatable.
Choose one with the ``HYPOTHESIS_PROFILE`` environment variable.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest
from hypothesis import settings

settings.register_profile("default", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("sanitize", max_examples=50, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

_BACKEND_MODULES = {
    "pure": "transport.wire.codec_pure",
    "native": "transport.wire.codec_native",
}


@pytest.fixture(scope="session", params=["pure", "native"])
def codec(request: pytest.FixtureRequest) -> ModuleType:
    """The codec module of one backend."""
    name = _BACKEND_MODULES[request.param]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"{name} cannot be imported (build the native module): {exc}")
