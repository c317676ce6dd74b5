"""Fixtures for the event-time tests: job tests run at parallelism 1 and 2."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[1, 2], ids=lambda p: f"p{p}")
def parallelism(request: pytest.FixtureRequest) -> int:
    return int(request.param)
