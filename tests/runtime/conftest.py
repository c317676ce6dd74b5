"""Fixtures for engine tests: every job test runs at parallelism 1 and 2 (bytewax's habit)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[1, 2], ids=lambda p: f"p{p}")
def parallelism(request: pytest.FixtureRequest) -> int:
    return int(request.param)
