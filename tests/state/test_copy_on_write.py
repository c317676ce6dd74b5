"""Copy-on-write snapshots of the hashmap backend hold the state as of the barrier.

Aspects covered:

* every state kind (value, list, map, reducing, aggregating), without and with TTL, in the void
  namespace and in a window namespace, with mutable values (dicts, list accumulators) and
  with immutable ones: after the barrier, records change state (updates, a value read from
  state and mutated in place, list appends, map puts and removes, clears, an accumulator
  mutated in place, TTL entries dropped on read after the clock moved, a state registered
  after the barrier); the copy-on-write blobs hold what a synchronous snapshot holds at the
  barrier (the same entries; immutable entries deleted and kept may come in another order),
  and the live state has every change. Immutable values are kept entry by entry, without
  serializing a key group early; a mutable value read makes its key group serialize first;
* negative control: the same changes with the key groups serialized late but not guarded give
  other contents (so the comparison above can fail);
* guards: a touched key group is serialized once and released; metrics and ``get_keys`` look
  through guards without serializing; steps serialize in key-group order within a budget; a
  serialization that fails ends the snapshot (``failure`` set, guards gone, state usable);
* the format: the parts of a blob joined are ``snapshot_key_group``; a blob restores from a
  ``memoryview`` slice of a larger buffer; restored containers load with the automatic
  garbage collections paused, atoms without.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest

from streamjob import keygroups
from streamjob.checkpoint import copy_on_write
from streamjob.checkpoint.operator_state import keyed_blob_parts
from streamjob.clock import ManualClock
from streamjob.duration import Duration
from streamjob.runtime.operators.keyed import KeyedOperatorMixin
from streamjob.state import (
    AggregateFunction,
    AggregatingStateDescriptor,
    HashMapStateBackend,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateTtlConfig,
    ValueStateDescriptor,
    canonical,
    hashmap_guard,
    hashmap_snapshot,
)

MAXP = 128
KEYS = [f"user-{i}" for i in range(300)]
WINDOW = (1_000, 2_000)
TTL_MS = 10_000


class Collect(AggregateFunction[Any, list[Any], list[Any]]):
    """Mutates its accumulator in place, as Flink allows."""

    def create_accumulator(self) -> list[Any]:
        return []

    def add(self, value: Any, accumulator: list[Any]) -> list[Any]:
        accumulator.append(value)
        return accumulator

    def get_result(self, accumulator: list[Any]) -> list[Any]:
        return list(accumulator)

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        a.extend(b)
        return a


class Sum(AggregateFunction[int, int, int]):
    """An atomic accumulator."""

    def create_accumulator(self) -> int:
        return 0

    def add(self, value: int, accumulator: int) -> int:
        return accumulator + value

    def get_result(self, accumulator: int) -> int:
        return accumulator

    def merge(self, a: int, b: int) -> int:
        return a + b


class Op(KeyedOperatorMixin):
    """A keyed operator with nothing but its backend."""

    name = "op-under-test"

    def __init__(self, backend: HashMapStateBackend) -> None:
        self.set_keyed_backend(backend)


def descriptors(prefix: str, ttl: bool, mutable: bool = True) -> list[Any]:
    found: list[Any] = [
        ValueStateDescriptor(prefix + "value"),
        ListStateDescriptor(prefix + "list"),
        MapStateDescriptor(prefix + "map"),
        ReducingStateDescriptor(prefix + "reducing", lambda a, b: a + b),
        AggregatingStateDescriptor(prefix + "aggregating", Collect() if mutable else Sum()),
    ]
    if ttl:
        config = StateTtlConfig.new_builder(Duration.of_millis(TTL_MS)).cleanup_full_snapshot()
        for descriptor in found:
            descriptor.enable_time_to_live(config.build())
    return found


def new_backend(clock: ManualClock) -> HashMapStateBackend:
    return HashMapStateBackend(
        max_parallelism=MAXP, key_group_range=keygroups.KeyGroupRange(0, MAXP - 1), clock=clock
    )


def fill(backend: HashMapStateBackend, states: list[Any], mutable: bool = True) -> None:
    value, listed, mapped, reducing, aggregating = states
    for i, key in enumerate(KEYS):
        backend.set_current_key(key)
        for namespace in (None, WINDOW):
            for state in states:
                state.set_current_namespace(namespace)
            value.update({"n": i, "tags": [key]} if mutable else (i, key, (i * 0.5, None)))
            listed.add_all([i, i + 1])
            mapped.put_all({"a": i, "b": -i})
            reducing.add(i)
            aggregating.add(i)


def change(
    backend: HashMapStateBackend, states: list[Any], clock: ManualClock, mutable: bool = True
) -> None:
    """What records after the barrier do: every way a state changes."""
    value, listed, mapped, reducing, aggregating = states
    for i, key in enumerate(KEYS):
        backend.set_current_key(key)
        for namespace in (None, WINDOW):
            for state in states:
                state.set_current_namespace(namespace)
            kind = i % 5
            if kind == 0:
                if mutable:
                    value.value()["tags"].append("mutated in place")  # heap semantics
                else:
                    value.update((value.value()[0] + 1, key, None))
                listed.add(-1)
                mapped.put("c", i)
                reducing.add(1000)
                aggregating.add(3 if not mutable else "more")
            elif kind == 1:
                value.update({"n": -i} if mutable else (-i,))
                listed.update([7])
                mapped.remove("a")
                aggregating.get()
            elif kind == 2:
                for state in states:
                    state.clear()
            elif kind == 3:
                for state in states:
                    state.clear()
                value.update((-i, "again") if not mutable else {"again": True})
                listed.add(i)
                mapped.put("again", 1)
                reducing.add(5)
            else:
                mapped.put_all({"a": 0})
                reducing.get()
    clock.advance(TTL_MS)  # every TTL entry has expired now: reading one drops it
    for key in KEYS[::3]:
        backend.set_current_key(key)
        for state in states:
            state.set_current_namespace(None)
        value.value()
        listed.get()
        mapped.items()


def late_state(backend: HashMapStateBackend) -> None:
    """A state registered after the barrier, written in every key group."""
    late = backend.get_state(ValueStateDescriptor("registered-late"))
    for key in KEYS:
        backend.set_current_key(key)
        late.update(key)


def barrier_blobs(backend: HashMapStateBackend) -> dict[int, bytes]:
    return {kg: backend.snapshot_key_group(kg) for kg in backend.key_group_range}


def content(blob: bytes) -> tuple[int, list[tuple[str, Any]]]:
    """What a blob holds, whatever the order of its entries: per section, state sections as
    their meta and sorted entries (keys and namespaces as bytes), other sections as bytes."""
    key_group, sections = canonical.read_key_group(blob)
    out: list[tuple[str, Any]] = []
    for name, body in sorted(sections):
        if name.startswith(canonical.STATE_SECTION_PREFIX):
            entries = sorted(canonical.iter_state_entries(body, decode=False))
            out.append((name, (canonical.read_state_meta(body), entries)))
        else:
            out.append((name, body))
    return key_group, out


def differing(got: dict[int, bytes], expected: dict[int, bytes]) -> list[int]:
    assert got.keys() == expected.keys()
    return [kg for kg in expected if content(got[kg]) != content(expected[kg])]


def finish(snapshot: copy_on_write.KeyGroupSnapshot) -> dict[int, bytes]:
    while not snapshot.done:
        snapshot.step(time.perf_counter() + 1.0)
    return {kg: b"".join(parts) for kg, parts in snapshot.blobs.items()}


@pytest.mark.parametrize("mutable", [True, False], ids=["mutable", "immutable"])
@pytest.mark.parametrize("ttl", [False, True], ids=["plain", "ttl"])
def test_blobs_hold_the_state_at_the_barrier(ttl: bool, mutable: bool) -> None:
    clock = ManualClock(1_000_000)
    backend = new_backend(clock)
    states = [backend.get_state(d) for d in descriptors("", ttl, mutable)]
    fill(backend, states, mutable)
    expected = barrier_blobs(backend)
    snapshot = copy_on_write.KeyGroupSnapshot(Op(backend), list(backend.key_group_range))
    assert snapshot.start()
    change(backend, states, clock, mutable)
    late_state(backend)
    got = finish(snapshot)
    assert differing(got, expected) == []
    if mutable:  # a mutable value read: its key group was serialized first
        assert snapshot.taken_by_touch > 0
    else:  # every entry kept one by one: no key group serialized early
        assert snapshot.taken_by_touch == 0
        assert snapshot.copied_on_write > len(KEYS)
    # the live state has every change, and no guard is left
    assert differing(barrier_blobs(backend), expected)
    assert all(
        type(slot) is not hashmap_guard.PendingKeyGroup
        for table in backend._tables.values()
        for slot in table.tables + table.ns_tables
    )
    backend.set_current_key(KEYS[1])
    states[0].set_current_namespace(None)
    if not ttl:
        assert states[0].value() == ({"n": -1} if mutable else (-1,))


@pytest.mark.parametrize("mutable", [True, False], ids=["mutable", "immutable"])
def test_negative_control_late_serialization_without_guards_differs(mutable: bool) -> None:
    clock = ManualClock(1_000_000)
    backend = new_backend(clock)
    states = [backend.get_state(d) for d in descriptors("", False, mutable)]
    fill(backend, states, mutable)
    expected = barrier_blobs(backend)
    snapshot = copy_on_write.KeyGroupSnapshot(Op(backend), list(backend.key_group_range))
    change(backend, states, clock, mutable)  # not started: nothing guards the key groups
    got = finish(snapshot)
    assert snapshot.taken_by_touch == 0
    assert len(differing(got, expected)) > len(expected) // 2


def test_a_mutable_value_read_serializes_its_key_group_once_and_releases() -> None:
    clock = ManualClock(0)
    backend = new_backend(clock)
    value = backend.get_state(ValueStateDescriptor("v"))
    fill_values(backend, value, mutable=True)
    taken: list[int] = []
    op = Op(backend)
    snapshot = copy_on_write.KeyGroupSnapshot(op, list(backend.key_group_range))
    original = snapshot._take

    def take(kg: int, *, capture: bool) -> None:
        taken.append(kg)
        original(kg, capture=capture)

    snapshot._take = take  # type: ignore[method-assign]
    assert snapshot.start()
    # metrics and key listings look through the guards
    assert backend.num_keys() == len(KEYS)
    assert backend.approx_size_bytes() > 0
    assert sorted(backend.get_keys("v", None)) == sorted(KEYS)
    assert taken == []
    backend.set_current_key(KEYS[0])
    kg = backend.current_key_group
    assert kg is not None
    value.value()
    value.update("new")
    value.value()
    assert taken == [kg]
    assert kg not in snapshot.pending
    assert type(backend._tables["v"].tables[kg]) is dict
    finish(snapshot)
    assert sorted(taken) == list(backend.key_group_range)


def test_immutable_values_are_kept_per_entry_while_the_key_group_waits() -> None:
    backend = new_backend(ManualClock(0))
    value = backend.get_state(ValueStateDescriptor("v"))
    fill_values(backend, value)
    snapshot = copy_on_write.KeyGroupSnapshot(Op(backend), list(backend.key_group_range))
    assert snapshot.start()
    backend.set_current_key(KEYS[0])
    kg = backend.current_key_group
    assert kg is not None
    guard = backend._tables["v"].tables[kg]
    assert type(guard) is hashmap_guard.PendingKeyGroup
    assert value.value() == KEYS[0]
    value.update("new")
    value.clear()
    backend.set_current_key("a key born after the barrier")
    value.update("born")
    assert snapshot.taken_by_touch == 0 and kg in snapshot.pending
    assert guard.saved == {KEYS[0]: KEYS[0]}  # read (an immutable str), then replaced
    finish(snapshot)
    got = b"".join(snapshot.blobs[kg])
    _, ((_, body),) = canonical.read_key_group(got)
    keys = [k for k, _, _ in canonical.iter_state_entries(body)]
    assert KEYS[0] in keys and "a key born after the barrier" not in keys
    assert snapshot.copied_on_write >= 2


def fill_values(backend: HashMapStateBackend, value: Any, mutable: bool = False) -> None:
    for key in KEYS:
        backend.set_current_key(key)
        value.update([key] if mutable else key)


def test_steps_go_in_key_group_order_within_the_budget() -> None:
    backend = new_backend(ManualClock(0))
    fill_values(backend, backend.get_state(ValueStateDescriptor("v")))
    snapshot = copy_on_write.KeyGroupSnapshot(Op(backend), list(backend.key_group_range))
    assert snapshot.start()
    snapshot.step(time.perf_counter())  # the deadline has passed: one key group
    assert list(snapshot.blobs) == [0]
    snapshot.touch(5)  # captured now, serialized by the next step, before the pending ones
    assert list(snapshot.captured) == [5] and list(snapshot.blobs) == [0]
    snapshot.step(time.perf_counter())
    assert list(snapshot.blobs) == [0, 5]
    snapshot.step(time.perf_counter())
    assert list(snapshot.blobs) == [0, 5, 1]
    finish(snapshot)
    assert sorted(snapshot.blobs) == list(range(MAXP))
    assert snapshot.done


def test_a_failed_serialization_ends_the_snapshot_and_leaves_state_usable() -> None:
    backend = new_backend(ManualClock(0))
    value = backend.get_state(ValueStateDescriptor("v"))
    backend.set_current_key("good")
    value.update(1)
    backend.set_current_key("bad")
    value.update(lambda: None)  # a lambda cannot be pickled
    bad_kg = backend.current_key_group
    snapshot = copy_on_write.KeyGroupSnapshot(Op(backend), list(backend.key_group_range))
    assert snapshot.start()
    assert value.value() is not None  # the touch fails inside; the record goes on
    assert snapshot.failure is not None and snapshot.done
    assert bad_kg not in snapshot.blobs
    backend.set_current_key("good")
    value.update(2)
    assert value.value() == 2
    assert backend._guarded == set()


def test_parts_join_to_the_blob_and_restore_from_a_view() -> None:
    clock = ManualClock(1_000_000)
    backend = new_backend(clock)
    states = [backend.get_state(d) for d in descriptors("", True)]
    fill(backend, states)
    op = Op(backend)
    blobs = {kg: backend.snapshot_key_group(kg) for kg in backend.key_group_range}
    for kg, blob in blobs.items():
        assert b"".join(keyed_blob_parts(op, kg)) == blob
    buffer = b"padding" + b"".join(blobs.values())
    view = memoryview(buffer)
    restored = new_backend(clock)
    offset = len(b"padding")
    for kg, blob in blobs.items():
        restored.restore_key_group(kg, view[offset : offset + len(blob)])
        offset += len(blob)
    for d in descriptors("", True):
        restored.get_state(d)
    assert {kg: restored.snapshot_key_group(kg) for kg in blobs} == blobs


class Tag(str):
    """A str subclass may carry mutable attributes: not captured by copy."""


def test_immutable_means_builtin_atoms_and_tuples_of_them_as_deep_as_asked() -> None:
    immutable = hashmap_guard.immutable
    assert immutable([1, "a", b"b", None, 1.5, True, 2j])
    assert not immutable([(1, "a")])  # a tuple's items are not visited
    assert immutable([(1, "a"), 3], depth=1)
    assert immutable([(1, ("a", (2, None))), frozenset({1, "x"}), 3], depth=3)
    assert not immutable([(1, ("a", (2, None)))], depth=2)
    assert not immutable([(1, [2])], depth=3)
    assert not immutable([{"a": 1}], depth=3)
    assert not immutable([Tag("x")], depth=3)


def test_a_capture_is_the_blob_at_the_capture_whatever_changes_after() -> None:
    clock = ManualClock(1_000_000)
    backend = new_backend(clock)
    states = [backend.get_state(d) for d in descriptors("", True)]
    states += [backend.get_state(d) for d in descriptors("plain-", False)]
    for i, key in enumerate(KEYS):
        backend.set_current_key(key)
        for state in states:
            state.set_current_namespace(None if i % 2 else WINDOW)
        for group in (states[:5], states[5:]):
            value, listed, mapped, reducing, aggregating = group
            value.update(i * 1.5)
            listed.add_all([i, "x"])
            mapped.put(key, None if i % 3 else b"v")
            reducing.add(i)
            aggregating.add(i)  # a list accumulator: mutable, serialized at the capture
    by_kg: dict[int, list[int]] = {}
    for i, key in enumerate(KEYS):
        by_kg.setdefault(keygroups.assign_to_key_group(key, MAXP), []).append(i)
    for kg, indices in by_kg.items():
        expected = b"".join(backend.snapshot_key_group_parts(kg))
        captured = backend.capture_key_group(kg)
        copied = [name for name, body in captured.sections if isinstance(body, tuple)]
        assert sorted(copied) == sorted(
            "state/" + d.name
            for d in descriptors("", True) + descriptors("plain-", False)
            if not d.name.endswith("aggregating")  # a list accumulator: serialized at once
        )
        for i in indices:
            backend.set_current_key(KEYS[i])
            for state in states:
                state.set_current_namespace(None if i % 2 else WINDOW)
                state.clear()
        assert b"".join(captured.parts()) == expected
        clock.advance(TTL_MS // 10)


@pytest.mark.parametrize("values", ["containers", "atoms"])
def test_restored_containers_load_with_the_collector_paused(
    values: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restored lists and dicts: the automatic collections are paused after the first key
    group (they would traverse the growing heap again and again); numbers and tuples of
    atoms: never paused. Afterwards the collector runs again."""
    source = new_backend(ManualClock(0))
    value = source.get_state(ValueStateDescriptor("v"))
    for i, key in enumerate(KEYS):
        source.set_current_key(key)
        value.update([i, {"k": key}] if values == "containers" else (i, key))
    blobs = barrier_blobs(source)
    enabled: list[bool] = []
    read_section = hashmap_snapshot.read_section

    def recording(*args: Any) -> None:
        enabled.append(gc.isenabled())
        read_section(*args)

    monkeypatch.setattr(hashmap_snapshot, "read_section", recording)
    restored = new_backend(ManualClock(0))
    for kg, blob in blobs.items():
        restored.restore_key_group(kg, blob)
    assert gc.isenabled()
    restored.get_state(ValueStateDescriptor("v"))  # loads the kept sections
    assert gc.isenabled()
    assert len(enabled) > 10 and enabled[0]
    assert all(enabled) is (values == "atoms")
    assert barrier_blobs(restored) == blobs
