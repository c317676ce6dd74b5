"""Fixtures for the keyed-state tests.

``backend_factory`` is parametrized over every keyed state backend: the contract suite
(``test_backend_contract.py``) runs once per backend. Add a backend by adding a param and a
builder here (RocksDB will build its database under ``tmp_path``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import pytest

from streamjob import clock as clock_mod
from streamjob import keygroups
from streamjob.state import HashMapStateBackend, KeyedStateBackend

MAX_PARALLELISM = 128


class BackendFactory(Protocol):
    def __call__(
        self,
        *,
        max_parallelism: int = MAX_PARALLELISM,
        key_group_range: keygroups.KeyGroupRange | None = None,
        clock: clock_mod.Clock | None = None,
    ) -> KeyedStateBackend: ...


def _hashmap(
    max_parallelism: int, key_group_range: keygroups.KeyGroupRange, clock: clock_mod.Clock
) -> KeyedStateBackend:
    return HashMapStateBackend(
        max_parallelism=max_parallelism, key_group_range=key_group_range, clock=clock
    )


_BUILDERS: dict[
    str, Callable[[int, keygroups.KeyGroupRange, clock_mod.Clock], KeyedStateBackend]
] = {"hashmap": _hashmap}


@pytest.fixture(params=sorted(_BUILDERS))
def backend_factory(request: pytest.FixtureRequest) -> Iterator[BackendFactory]:
    """Builds fresh backends of one kind; the whole key-group range by default."""
    build = _BUILDERS[request.param]
    made: list[KeyedStateBackend] = []

    def factory(
        *,
        max_parallelism: int = MAX_PARALLELISM,
        key_group_range: keygroups.KeyGroupRange | None = None,
        clock: clock_mod.Clock | None = None,
    ) -> KeyedStateBackend:
        kg_range = key_group_range or keygroups.KeyGroupRange(0, max_parallelism - 1)
        backend = build(max_parallelism, kg_range, clock or _default_clock())
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        backend.dispose()


def _default_clock() -> clock_mod.ManualClock:
    return clock_mod.ManualClock(1_000_000)


@pytest.fixture
def manual_clock() -> clock_mod.ManualClock:
    return clock_mod.ManualClock(1_000_000)


@pytest.fixture
def backend(backend_factory: BackendFactory) -> KeyedStateBackend:
    """One backend owning every key group at max parallelism 128."""
    return backend_factory()
