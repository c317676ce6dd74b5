"""Contract of every keyed state backend, part 3: snapshots, restores, rescaling.

Aspects covered:

* every state kind, in the void namespace and in window namespaces, round-trips through
  ``snapshot_key_group`` -> ``restore_key_group`` into a fresh backend;
* rescaling: state written at parallelism 2 restored at 3, and at 3 restored at 1, with key
  groups split by ``KeyGroupRange.of_operator``: every key's state lands in the subtask that owns
  its key group, equals the original, and nowhere else;
* restore before or after registration; restored state never registered survives the next
  snapshot unchanged; sections of other layers (timers) are ignored;
* ``iter_snapshot`` is lazy; empty key groups give tiny blobs;
* TTL timestamps survive a snapshot; ``cleanup_full_snapshot`` leaves expired entries out; a
  restore may add a TTL;
* meta info and compatibility: ``state_metadata``, ``check_compatible`` naming kind and
  serializer changes, a restore refused for an incompatible registered state, a key group
  outside the backend's range refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamjob import clock as clock_mod
from streamjob import errors, keygroups
from streamjob.duration import Duration
from streamjob.state import (
    AggregatingStateDescriptor,
    IntSerializer,
    JsonSerializer,
    KeyedStateBackend,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateKind,
    StateTtlConfig,
    StrSerializer,
    ValueStateDescriptor,
    canonical,
)

from .conftest import MAX_PARALLELISM, BackendFactory
from .test_backend_contract import Average

KEYS: list[Any] = (
    [f"user-{i}" for i in range(120)] + list(range(-40, 40)) + [("t", i) for i in range(20)]
)
WINDOW = (1_000, 2_000)


def descriptors() -> list[Any]:
    return [
        ValueStateDescriptor("value", serializer=JsonSerializer()),
        ListStateDescriptor("list"),
        MapStateDescriptor("map", key_serializer=StrSerializer(), value_serializer=IntSerializer()),
        ReducingStateDescriptor("reducing", lambda a, b: a + b),
        AggregatingStateDescriptor("aggregating", Average()),
    ]


def populate(backend: KeyedStateBackend, keys: list[Any]) -> None:
    states = [backend.get_state(d) for d in descriptors()]
    value, lst, mapping, reducing, aggregating = states
    for i, key in enumerate(keys):
        backend.set_current_key(key)
        for namespace in (None, WINDOW):
            for state in states:
                state.set_current_namespace(namespace)
            tag = 0 if namespace is None else 1
            value.update({"key": str(key), "n": i + tag})
            lst.add_all([i, tag])
            mapping.put_all({"a": i, "b": tag})
            reducing.add(i)
            reducing.add(tag)
            aggregating.add(float(i))
            aggregating.add(float(tag))
    for state in states:
        state.set_current_namespace(None)


def read_all(backend: KeyedStateBackend, key: Any) -> list[Any]:
    states = [backend.get_state(d) for d in descriptors()]
    value, lst, mapping, reducing, aggregating = states
    backend.set_current_key(key)
    seen = []
    for namespace in (None, WINDOW):
        for state in states:
            state.set_current_namespace(namespace)
        seen.append(
            (value.value(), lst.get(), dict(mapping.items()), reducing.get(), aggregating.get())
        )
    for state in states:
        state.set_current_namespace(None)
    return seen


def copy_key_groups(
    source: KeyedStateBackend, target: KeyedStateBackend, key_groups: Any = None
) -> None:
    for kg, blob in source.iter_snapshot(key_groups or source.key_group_range):
        if kg in target.key_group_range:
            target.restore_key_group(kg, blob)


def test_every_kind_round_trips_into_a_fresh_backend(backend_factory: BackendFactory) -> None:
    original = backend_factory()
    populate(original, KEYS)
    expected = {repr(key): read_all(original, key) for key in KEYS}
    assert expected[repr("user-3")][1][2] == {"a": 3, "b": 1}
    restored = backend_factory()
    for d in descriptors():
        restored.get_state(d)
    copy_key_groups(original, restored)
    assert {repr(key): read_all(restored, key) for key in KEYS} == expected
    assert restored.num_keys() == original.num_keys()


def test_restore_before_registration_loads_on_registration(
    backend_factory: BackendFactory,
) -> None:
    original = backend_factory()
    populate(original, KEYS)
    restored = backend_factory()
    copy_key_groups(original, restored)
    assert {m.name for m in restored.state_metadata()} == {d.name for d in descriptors()}
    for key in KEYS[::7]:
        assert read_all(restored, key) == read_all(original, key)


def test_restored_state_never_registered_survives_the_next_snapshot(
    backend_factory: BackendFactory,
) -> None:
    original = backend_factory()
    populate(original, KEYS)
    middle = backend_factory()
    copy_key_groups(original, middle)
    middle.get_state(ValueStateDescriptor("value", serializer=JsonSerializer()))  # only one
    last = backend_factory()
    copy_key_groups(middle, last)
    for key in KEYS[::5]:
        assert read_all(last, key) == read_all(original, key)


def rescale(
    backend_factory: BackendFactory, old_parallelism: int, new_parallelism: int
) -> tuple[list[KeyedStateBackend], list[KeyedStateBackend]]:
    old = [
        backend_factory(
            key_group_range=keygroups.KeyGroupRange.of_operator(i, old_parallelism, MAX_PARALLELISM)
        )
        for i in range(old_parallelism)
    ]
    for backend in old:
        owned = [
            k
            for k in KEYS
            if keygroups.assign_to_key_group(k, MAX_PARALLELISM) in backend.key_group_range
        ]
        populate(backend, owned)
    new = [
        backend_factory(
            key_group_range=keygroups.KeyGroupRange.of_operator(i, new_parallelism, MAX_PARALLELISM)
        )
        for i in range(new_parallelism)
    ]
    for target in new:
        for source in old:
            overlap = source.key_group_range.intersection(target.key_group_range)
            copy_key_groups(source, target, list(overlap))
    return old, new


@pytest.mark.parametrize(("old_p", "new_p"), [(2, 3), (3, 1), (1, 4)])
def test_rescale_moves_each_key_to_the_subtask_owning_its_key_group(
    backend_factory: BackendFactory, old_p: int, new_p: int
) -> None:
    old, new = rescale(backend_factory, old_p, new_p)
    for backend in new:  # as an operator's open() does
        for d in descriptors():
            backend.get_state(d)
    for key in KEYS:
        kg = keygroups.assign_to_key_group(key, MAX_PARALLELISM)
        before = old[keygroups.operator_index_for_key_group(MAX_PARALLELISM, old_p, kg)]
        owner = keygroups.operator_index_for_key_group(MAX_PARALLELISM, new_p, kg)
        assert read_all(new[owner], key) == read_all(before, key), key
        for index, other in enumerate(new):
            if index != owner:
                for d in descriptors():
                    assert key not in set(other.get_keys(d.name, None))
                    assert key not in set(other.get_keys(d.name, WINDOW))
    assert sum(b.num_keys() for b in new) == sum(b.num_keys() for b in old)


def test_restoring_a_key_group_outside_the_range_is_refused(
    backend_factory: BackendFactory,
) -> None:
    full = backend_factory()
    populate(full, KEYS[:10])
    half = backend_factory(key_group_range=keygroups.KeyGroupRange.of_operator(0, 2, 128))
    with pytest.raises(errors.StateError, match=r"key group 100 is outside"):
        half.restore_key_group(100, full.snapshot_key_group(100))
    with pytest.raises(errors.StateError, match="outside"):
        half.snapshot_key_group(100)


def test_a_blob_restored_under_another_key_group_is_refused(backend: KeyedStateBackend) -> None:
    with pytest.raises(errors.StateError, match="holds key group 5"):
        backend.restore_key_group(6, backend.snapshot_key_group(5))


def test_sections_of_other_layers_are_ignored(backend_factory: BackendFactory) -> None:
    original = backend_factory()
    populate(original, KEYS[:20])
    restored = backend_factory()
    for kg, blob in original.iter_snapshot(original.key_group_range):
        restored.restore_key_group(kg, canonical.append_section(blob, "timers/t", b"\x01\x02"))
    for key in KEYS[:20]:
        assert read_all(restored, key) == read_all(original, key)


def test_iter_snapshot_is_lazy(backend_factory: BackendFactory) -> None:
    backend = backend_factory()
    state = backend.get_state(ValueStateDescriptor("v"))
    chunks = backend.iter_snapshot([0, 1])
    kg, _first = next(chunks)
    assert kg == 0
    key = next(k for k in range(10_000) if keygroups.assign_to_key_group(k, 128) == 1)
    backend.set_current_key(key)
    state.update("written between two key groups")
    kg, second = next(chunks)
    restored = backend_factory()
    restored.restore_key_group(1, second)
    restored.set_current_key(key)
    assert restored.get_state(ValueStateDescriptor("v")).value() == (
        "written between two key groups"
    )


def test_empty_key_group_blob_is_small(backend: KeyedStateBackend) -> None:
    backend.get_state(ValueStateDescriptor("v"))
    assert len(backend.snapshot_key_group(3)) <= 16


def test_ttl_timestamps_survive_a_snapshot(backend_factory: BackendFactory) -> None:
    clock = clock_mod.ManualClock(10_000)
    config = StateTtlConfig.new_builder(Duration.of_millis(1_000)).build()
    descriptor: ValueStateDescriptor[str] = ValueStateDescriptor("v")
    descriptor.enable_time_to_live(config)
    original = backend_factory(clock=clock)
    original.get_state(descriptor)
    original.set_current_key("k")
    original.get_state(descriptor).update("x")
    clock.advance(600)
    restored = backend_factory(clock=clock)
    copy_key_groups(original, restored)
    state = restored.get_state(descriptor)
    restored.set_current_key("k")
    assert state.value() == "x"
    clock.advance(400)
    assert state.value() is None, "expiry is measured from the original write"


def test_cleanup_full_snapshot_leaves_expired_entries_out(
    backend_factory: BackendFactory,
) -> None:
    clock = clock_mod.ManualClock(10_000)
    config = StateTtlConfig.new_builder(Duration.of_millis(1_000)).cleanup_full_snapshot().build()
    descriptor: ListStateDescriptor[str] = ListStateDescriptor("l")
    descriptor.enable_time_to_live(config)
    backend = backend_factory(clock=clock)
    state = backend.get_state(descriptor)
    backend.set_current_key("old")
    state.add("expires")
    kg_old = backend.current_key_group
    clock.advance(500)
    backend.set_current_key("new")
    state.add("stays")
    clock.advance(500)
    assert kg_old is not None
    assert b"expires" not in backend.snapshot_key_group(kg_old)
    restored = backend_factory(clock=clock)
    copy_key_groups(backend, restored)
    restored_state = restored.get_state(descriptor)
    assert list(restored.get_keys("l", None)) == ["new"]
    restored.set_current_key("new")
    assert restored_state.get() == ["stays"]


def test_restore_may_add_a_ttl(backend_factory: BackendFactory) -> None:
    clock = clock_mod.ManualClock(10_000)
    original = backend_factory(clock=clock)
    original.get_state(ValueStateDescriptor("v"))
    original.set_current_key("k")
    original.get_state(ValueStateDescriptor("v")).update("x")
    clock.advance(5_000)
    descriptor: ValueStateDescriptor[str] = ValueStateDescriptor("v")
    descriptor.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_millis(1_000)).build())
    restored = backend_factory(clock=clock)
    state = restored.get_state(descriptor)
    copy_key_groups(original, restored)
    restored.set_current_key("k")
    clock.advance(999)
    assert state.value() == "x", "stamped with the restore time"
    clock.advance(1)
    assert state.value() is None


def test_state_metadata_names_kinds_serializers_and_ttl(backend: KeyedStateBackend) -> None:
    for d in descriptors():
        backend.get_state(d)
    with_ttl: ValueStateDescriptor[int] = ValueStateDescriptor("ttl")
    with_ttl.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_seconds(3)).build())
    backend.get_state(with_ttl)
    infos = {info.name: info for info in backend.state_metadata()}
    assert infos["value"].kind is StateKind.VALUE
    assert infos["value"].value_serializer.name == "json"
    assert infos["map"].key_serializer is not None
    assert infos["map"].key_serializer.name == "str"
    assert infos["map"].value_serializer.name == "int"
    assert infos["list"].value_serializer.name == "pickle"
    assert infos["list"].ttl is None
    assert infos["ttl"].ttl is not None
    assert infos["ttl"].to_dict()["ttl"]["ttl_ms"] == 3_000


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (lambda: ListStateDescriptor("value", serializer=JsonSerializer()), "kind changed"),
        (lambda: ValueStateDescriptor("value", serializer=StrSerializer()), "json v1"),
    ],
)
def test_incompatible_state_is_named_on_check_and_refused_on_restore(
    backend_factory: BackendFactory, changed: Callable[[], Any], message: str
) -> None:
    original = backend_factory()
    populate(original, KEYS[:10])
    restored = backend_factory()
    restored.get_state(changed())
    with pytest.raises(errors.StateError, match=message) as info:
        restored.check_compatible(original.state_metadata())
    assert "'value'" in str(info.value)
    with pytest.raises(errors.StateError, match=message):
        copy_key_groups(original, restored)


def test_registering_an_incompatible_state_after_restore_is_refused(
    backend_factory: BackendFactory,
) -> None:
    original = backend_factory()
    populate(original, KEYS[:10])
    restored = backend_factory()
    copy_key_groups(original, restored)
    with pytest.raises(errors.StateError, match="kind changed"):
        restored.get_state(MapStateDescriptor("list"))


def test_compatible_metadata_passes(backend_factory: BackendFactory) -> None:
    original = backend_factory()
    populate(original, KEYS[:10])
    restored = backend_factory()
    for d in descriptors():
        restored.get_state(d)
    restored.check_compatible(original.state_metadata())
