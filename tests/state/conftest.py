"""Fixtures for the keyed-state tests.

``backend_factory`` is parametrized over every keyed state backend: the contract suite
(``test_backend_contract.py``) runs once per backend. Add a backend by adding a param and a
builder here; RocksDB builds each database in its own directory under ``tmp_path``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Protocol

import pytest

from streamjob import clock as clock_mod
from streamjob import keygroups
from streamjob.state import HashMapStateBackend, KeyedStateBackend
from streamjob.state.rocksdb import RocksDBOptions, RocksDBStateBackend

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


def fast_scratch(tmp_path: pathlib.Path) -> pathlib.Path:
    """Where test databases go: a RAM disk when the machine has one (RocksDB syncs every new
    database to disk, about 50 ms each here), else ``tmp_path``."""
    shm = pathlib.Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return pathlib.Path(tempfile.mkdtemp(prefix="streamjob-test-", dir=shm))
    return tmp_path


@pytest.fixture
def scratch(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    path = fast_scratch(tmp_path)
    yield path
    if path != tmp_path:
        shutil.rmtree(path, ignore_errors=True)


def _rocksdb(directory: str) -> Callable[..., KeyedStateBackend]:
    def build(
        max_parallelism: int, key_group_range: keygroups.KeyGroupRange, clock: clock_mod.Clock
    ) -> KeyedStateBackend:
        return RocksDBStateBackend(
            max_parallelism=max_parallelism,
            key_group_range=key_group_range,
            clock=clock,
            directory=directory,
            options=SMALL_ROCKSDB,
        )

    return build


SMALL_ROCKSDB = RocksDBOptions(
    block_cache_bytes=4 << 20,
    write_buffer_bytes=1 << 20,
    total_write_buffer_bytes=4 << 20,
    cache_entries=64,
)
"""Small enough that the contract tests also run through cache eviction."""

_BUILDERS: dict[str, Callable[[str], Callable[..., KeyedStateBackend]]] = {
    "hashmap": lambda _directory: _hashmap,
    "rocksdb": _rocksdb,
}


@pytest.fixture(params=sorted(_BUILDERS))
def backend_factory(
    request: pytest.FixtureRequest, scratch: pathlib.Path
) -> Iterator[BackendFactory]:
    """Builds fresh backends of one kind; the whole key-group range by default."""
    build = _BUILDERS[request.param](str(scratch))
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
