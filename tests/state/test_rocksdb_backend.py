"""The RocksDB backend beyond the shared contract: layout, write-back cache, native snapshots.

Aspects covered:

* key layout: a 1-byte key group below max parallelism 129, 2 bytes above; every key of a key
  group in one contiguous range; ListState one entry per element, MapState one per user key;
* the write-back cache: bounded (it writes back and evicts when full, and reads come back
  right), no write lost when an access evicts the cache midway (room for one entry), written
  back as one batch at a native checkpoint, so unflushed writes are in it;
* native checkpoints and ``restore_native``: the same key groups (the database adopted as it
  is), and rescaling 2 -> 3 and 3 -> 1 (largest overlap, ``delete_range`` of foreign key groups,
  SST ingestion of the others): every key's state equals the original, in exactly one backend,
  and no backend keeps a foreign key group; list appends after a restore sort after the
  restored elements; a restore after registration is refused;
* a state restored without TTL and registered with one gets the restore time as timestamp;
* options from the job configuration with Flink's names; ``dispose`` removes the directory.
"""

from __future__ import annotations

import os
import pathlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from streamjob import clock as clock_mod
from streamjob import errors, keygroups
from streamjob.duration import Duration
from streamjob.state import (
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateTtlConfig,
    ValueStateDescriptor,
)
from streamjob.state.rocksdb import RocksDBOptions, RocksDBStateBackend, catalog, layout

from .conftest import SMALL_ROCKSDB
from .test_backend_contract_snapshots import KEYS, descriptors, populate, read_all

MAX_P = 128


_MADE: list[RocksDBStateBackend] = []


def make(
    directory: pathlib.Path,
    kg_range: keygroups.KeyGroupRange | None = None,
    *,
    max_parallelism: int = MAX_P,
    options: RocksDBOptions = SMALL_ROCKSDB,
    clock: clock_mod.Clock | None = None,
) -> RocksDBStateBackend:
    backend = RocksDBStateBackend(
        max_parallelism=max_parallelism,
        key_group_range=kg_range or keygroups.KeyGroupRange(0, max_parallelism - 1),
        clock=clock or clock_mod.ManualClock(1_000_000),
        options=options,
        directory=str(directory),
    )
    _MADE.append(backend)
    return backend


@pytest.fixture(autouse=True)
def _dispose_backends(scratch: pathlib.Path) -> Iterator[None]:
    """Dispose every backend before its directory goes (a database whose files vanish under
    it stalls RocksDB's shared background threads)."""
    yield
    while _MADE:
        _MADE.pop().dispose()


def entries(backend: RocksDBStateBackend, state: str) -> list[tuple[bytes, bytes]]:
    """Every RocksDB entry of one state (test access to the backend's database)."""
    backend.flush()
    database = backend._db
    column = database.columns[catalog.column_name(state)]
    return list(database.scan(column, b"", b"\xff\xff\xff"))


def owned(kg_range: keygroups.KeyGroupRange) -> list[Any]:
    return [k for k in KEYS if keygroups.assign_to_key_group(k, MAX_P) in kg_range]


# -- layout -----------------------------------------------------------------------------------


def test_key_groups_take_one_byte_up_to_128_and_two_above() -> None:
    assert layout.key_group_width(128) == 1
    assert layout.key_group_width(129) == 2
    assert layout.key_group_prefix(5, 1) == b"\x05"
    assert layout.key_group_prefix(300, 2) == b"\x01\x2c"


@pytest.mark.parametrize("max_parallelism", [128, 1024])
def test_every_key_group_is_one_contiguous_key_range(
    scratch: pathlib.Path, max_parallelism: int
) -> None:
    backend = make(scratch, max_parallelism=max_parallelism)
    state = backend.get_state(ValueStateDescriptor("v"))
    for key in KEYS:
        backend.set_current_key(key)
        state.update(key)
    width = layout.key_group_width(max_parallelism)
    groups = [layout.key_group_of(raw, width) for raw, _ in entries(backend, "v")]
    assert groups == sorted(groups), "key order is key-group order"
    expected = {keygroups.assign_to_key_group(k, max_parallelism) for k in KEYS}
    assert set(groups) == expected


def test_list_is_one_entry_per_element_and_map_one_per_user_key(scratch: pathlib.Path) -> None:
    backend = make(scratch)
    lst = backend.get_state(ListStateDescriptor("l"))
    mapping = backend.get_state(MapStateDescriptor("m"))
    backend.set_current_key("k")
    lst.add_all(["a", "b", "c"])
    lst.add("d")
    mapping.put_all({"x": 1, "y": 2})
    assert len(entries(backend, "l")) == 4
    assert len(entries(backend, "m")) == 2
    raws = [raw for raw, _ in entries(backend, "l")]
    assert len({raw[:-8] for raw in raws}) == 1, "one prefix, then the element's sequence"
    assert [layout.sequence_of(raw) for raw in raws] == sorted(layout.sequence_of(r) for r in raws)
    lst.update(["z"])
    assert len(entries(backend, "l")) == 1
    assert lst.get() == ["z"]


# -- the write-back cache ---------------------------------------------------------------------


def test_a_full_cache_writes_back_and_evicts_and_reads_come_back(scratch: pathlib.Path) -> None:
    backend = make(scratch, options=RocksDBOptions(cache_entries=10))
    state = backend.get_state(ValueStateDescriptor("count", default_value=0))
    for _ in range(3):
        for key in range(100):
            backend.set_current_key(key)
            state.update(state.value() + 1)
    store = backend._stores["count"]
    assert store.count <= 10, "the cache stays bounded"  # type: ignore[union-attr]
    assert len(entries(backend, "count")) == 100
    for key in range(100):
        backend.set_current_key(key)
        assert state.value() == 3
    assert backend.num_keys() == 100


@pytest.mark.parametrize("with_ttl", [False, True], ids=["plain", "ttl"])
def test_no_write_is_lost_when_an_access_evicts_the_cache_midway(
    scratch: pathlib.Path, with_ttl: bool
) -> None:
    """With room for one entry, every miss evicts; a reducing add (read, remove, write) and a
    clear of an evicted key must still reach RocksDB."""
    backend = make(scratch, options=RocksDBOptions(cache_entries=1))
    descriptor: ReducingStateDescriptor[int] = ReducingStateDescriptor("sum", lambda a, b: a + b)
    if with_ttl:
        descriptor.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_hours(1)).build())
    state = backend.get_state(descriptor)
    for _ in range(3):
        for key in range(40):
            backend.set_current_key(key)
            state.add(key)
    for key in range(0, 40, 2):
        backend.set_current_key(key)
        state.clear()
    for key in range(40):
        backend.set_current_key(key)
        assert state.get() == (None if key % 2 == 0 else 3 * key), key
    assert backend.num_keys() == 20


def test_unflushed_writes_are_in_a_native_checkpoint(scratch: pathlib.Path) -> None:
    source = make(scratch / "a", keygroups.KeyGroupRange(0, 63))
    state = source.get_state(ValueStateDescriptor("v"))
    keys = owned(source.key_group_range)
    for key in keys:
        source.set_current_key(key)
        state.update(f"value of {key}")
    checkpoint = source.native_checkpoint(1)
    assert checkpoint.shared, "the cache was written back and flushed into an SST file"
    restored = restore(
        scratch / "b", [(checkpoint, source.key_group_range)], source.key_group_range
    )
    copy = restored.get_state(ValueStateDescriptor("v"))
    for key in keys:
        restored.set_current_key(key)
        assert copy.value() == f"value of {key}"


# -- native checkpoints and restores ----------------------------------------------------------


def restore(
    directory: pathlib.Path,
    checkpoints: list[tuple[Any, keygroups.KeyGroupRange]],
    kg_range: keygroups.KeyGroupRange,
) -> RocksDBStateBackend:
    """A new backend restored from copies of native checkpoints (as if downloaded)."""
    backend = make(directory, kg_range)
    downloads = []
    for index, (checkpoint, old_range) in enumerate(checkpoints):
        target = backend.restore_directory(index)
        for name, _ in checkpoint.files:
            shutil.copy(os.path.join(checkpoint.directory, name), target)
        downloads.append((target, old_range))
    backend.restore_native(downloads)
    return backend


@pytest.mark.parametrize(("old_p", "new_p"), [(2, 2), (2, 3), (3, 1)])
def test_native_restore_at_any_parallelism_keeps_every_key(
    scratch: pathlib.Path, old_p: int, new_p: int
) -> None:
    old = [
        make(scratch / f"old{i}", keygroups.KeyGroupRange.of_operator(i, old_p, MAX_P))
        for i in range(old_p)
    ]
    checkpoints = []
    for backend in old:
        populate(backend, owned(backend.key_group_range))
        checkpoints.append((backend.native_checkpoint(7), backend.key_group_range))
    new = []
    for i in range(new_p):
        kg_range = keygroups.KeyGroupRange.of_operator(i, new_p, MAX_P)
        sources = [c for c in checkpoints if len(c[1].intersection(kg_range))]
        new.append(restore(scratch / f"new{i}", sources, kg_range))
    for backend in new:
        for d in descriptors():
            backend.get_state(d)
        for name in (d.name for d in descriptors()):
            outside = [
                raw
                for raw, _ in entries(backend, name)
                if layout.key_group_of(raw, 1) not in backend.key_group_range
            ]
            assert not outside, f"{name}: foreign key groups were not deleted"
    for key in KEYS:
        kg = keygroups.assign_to_key_group(key, MAX_P)
        before = old[keygroups.operator_index_for_key_group(MAX_P, old_p, kg)]
        after = new[keygroups.operator_index_for_key_group(MAX_P, new_p, kg)]
        assert read_all(after, key) == read_all(before, key), key
    assert sum(b.num_keys() for b in new) == sum(b.num_keys() for b in old)


def test_list_appends_after_a_native_restore_come_after_restored_elements(
    scratch: pathlib.Path,
) -> None:
    kg_range = keygroups.KeyGroupRange(0, MAX_P - 1)
    source = make(scratch / "a")
    lst = source.get_state(ListStateDescriptor("l"))
    source.set_current_key("k")
    lst.add_all([1, 2, 3])
    restored = restore(scratch / "b", [(source.native_checkpoint(1), kg_range)], kg_range)
    copy = restored.get_state(ListStateDescriptor("l"))
    restored.set_current_key("k")
    copy.add(4)
    assert copy.get() == [1, 2, 3, 4]


def test_restore_native_after_registration_is_refused(scratch: pathlib.Path) -> None:
    backend = make(scratch)
    backend.get_state(ValueStateDescriptor("v"))
    with pytest.raises(errors.StateError, match="before any state is registered"):
        backend.restore_native([(str(scratch), backend.key_group_range)])


def test_restored_state_registered_with_a_ttl_is_stamped_with_the_restore_time(
    scratch: pathlib.Path,
) -> None:
    clock = clock_mod.ManualClock(10_000)
    source = make(scratch / "a", clock=clock)
    source.get_state(ValueStateDescriptor("v"))
    source.set_current_key("k")
    source.get_state(ValueStateDescriptor("v")).update("x")
    kg_range = source.key_group_range
    restored = restore(scratch / "b", [(source.native_checkpoint(1), kg_range)], kg_range)
    restored._clock = clock
    clock.advance(5_000)
    descriptor: ValueStateDescriptor[str] = ValueStateDescriptor("v")
    descriptor.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_millis(1_000)).build())
    state = restored.get_state(descriptor)
    restored.set_current_key("k")
    clock.advance(999)
    assert state.value() == "x"
    clock.advance(1)
    assert state.value() is None


# -- options and lifecycle --------------------------------------------------------------------


def test_options_come_from_the_job_configuration_with_flinks_names() -> None:
    options = RocksDBOptions.from_config(
        {
            "state.backend.rocksdb.block.cache-size": "256mb",
            "state.backend.rocksdb.writebuffer.size": "32 MiB",
            "state.backend.rocksdb.writebuffer.count": 3,
            "state.backend.rocksdb.compression": "zstd",
            "unrelated.key": "ignored",
        }
    )
    assert options.block_cache_bytes == 256 << 20
    assert options.write_buffer_bytes == 32 << 20
    assert options.max_write_buffers == 3
    assert options.compression == "zstd"
    with pytest.raises(ValueError, match="compression"):
        RocksDBOptions.from_config({"state.backend.rocksdb.compression": "brotli"})
    with pytest.raises(ValueError, match=r"block\.cache-size"):
        RocksDBOptions.from_config({"state.backend.rocksdb.block.cache-size": "lots"})


def test_dispose_removes_the_working_directory(scratch: pathlib.Path) -> None:
    backend = make(scratch)
    backend.get_state(ValueStateDescriptor("v"))
    workdir = backend.workdir
    assert os.path.isdir(workdir)
    backend.dispose()
    assert not os.path.exists(workdir)
