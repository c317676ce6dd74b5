"""Contract of every keyed state backend, part 2: state time-to-live (Flink's semantics).

Driven by a ``ManualClock`` (never sleeps). Aspects covered:

* expiry boundary: written at ``t`` with TTL ``d`` -> visible at ``t + d - 1``, gone at ``t + d``;
* ``OnCreateAndWrite`` (reads do not extend) vs ``OnReadAndWrite`` (reads extend);
* ``NeverReturnExpired`` vs ``ReturnExpiredIfNotCleanedUp`` (an expired value is returned by
  the read that cleans it up, and never again);
* per-element expiry in ListState and per-entry expiry in MapState;
* reducing and aggregating state start afresh once their accumulator expired;
* merging namespaces of TTL state; expired state is not counted once read.

TTL through snapshots (timestamps kept, ``cleanup_full_snapshot``) is in
``test_backend_contract_snapshots.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob import clock as clock_mod
from streamjob.duration import Duration
from streamjob.state import (
    AggregatingStateDescriptor,
    KeyedStateBackend,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateTtlConfig,
    StateVisibility,
    UpdateType,
    ValueStateDescriptor,
)

from .conftest import BackendFactory
from .test_backend_contract import Average

TTL = 1_000


def ttl_config(
    update: UpdateType = StateTtlConfig.UpdateType.OnCreateAndWrite,
    visibility: StateVisibility = StateTtlConfig.StateVisibility.NeverReturnExpired,
) -> StateTtlConfig:
    return (
        StateTtlConfig.new_builder(Duration.of_millis(TTL))
        .set_update_type(update)
        .set_state_visibility(visibility)
        .build()
    )


def with_ttl(descriptor: Any, config: StateTtlConfig | None = None) -> Any:
    descriptor.enable_time_to_live(config or ttl_config())
    return descriptor


@pytest.fixture
def clock() -> clock_mod.ManualClock:
    return clock_mod.ManualClock(50_000)


@pytest.fixture
def backend(backend_factory: BackendFactory, clock: clock_mod.ManualClock) -> KeyedStateBackend:
    backend = backend_factory(clock=clock)
    backend.set_current_key("k")
    return backend


def test_value_expires_exactly_at_write_time_plus_ttl(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    state = backend.get_state(with_ttl(ValueStateDescriptor("v", default_value="default")))
    state.update("x")
    clock.advance(TTL - 1)
    assert state.value() == "x"
    clock.advance(1)
    assert state.value() == "default"
    assert backend.num_keys() == 0


def test_on_create_and_write_reads_do_not_extend(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    state = backend.get_state(with_ttl(ValueStateDescriptor("v")))
    state.update("x")
    clock.advance(600)
    assert state.value() == "x"
    clock.advance(600)
    assert state.value() is None


def test_writes_extend(backend: KeyedStateBackend, clock: clock_mod.ManualClock) -> None:
    state = backend.get_state(with_ttl(ValueStateDescriptor("v")))
    state.update("x")
    clock.advance(600)
    state.update("y")
    clock.advance(600)
    assert state.value() == "y"


def test_on_read_and_write_reads_extend(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    config = ttl_config(update=StateTtlConfig.UpdateType.OnReadAndWrite)
    state = backend.get_state(with_ttl(ValueStateDescriptor("v"), config))
    state.update("x")
    for _ in range(5):
        clock.advance(600)
        assert state.value() == "x"
    clock.advance(TTL)
    assert state.value() is None


def test_return_expired_if_not_cleaned_up_returns_it_once(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    config = ttl_config(visibility=StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)
    state = backend.get_state(with_ttl(ValueStateDescriptor("v"), config))
    state.update("x")
    clock.advance(TTL)
    assert state.value() == "x", "not cleaned up yet, so still visible"
    assert state.value() is None, "that read cleaned it up"


def test_list_elements_expire_one_by_one(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    state = backend.get_state(with_ttl(ListStateDescriptor("l")))
    state.add("old")
    clock.advance(500)
    state.add_all(["new1", "new2"])
    clock.advance(500)
    assert state.get() == ["new1", "new2"]
    clock.advance(500)
    assert state.get() == []
    assert backend.num_keys() == 0


def test_list_on_read_and_return_expired(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    config = ttl_config(
        StateTtlConfig.UpdateType.OnReadAndWrite,
        StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp,
    )
    state = backend.get_state(with_ttl(ListStateDescriptor("l"), config))
    state.add("old")
    clock.advance(500)
    state.add("new")
    clock.advance(500)
    assert state.get() == ["old", "new"], "the expired element is returned by this read"
    clock.advance(900)
    assert state.get() == ["new"], "the previous read extended 'new' and dropped 'old'"


def test_map_entries_expire_one_by_one(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    state = backend.get_state(with_ttl(MapStateDescriptor("m")))
    state.put("old", 1)
    clock.advance(500)
    state.put_all({"new": 2, "newer": 3})
    clock.advance(500)
    assert state.get("old") is None
    assert not state.contains("old")
    assert dict(state.items()) == {"new": 2, "newer": 3}
    assert sorted(state.keys()) == ["new", "newer"]
    assert sorted(state.values()) == [2, 3]
    clock.advance(500)
    assert state.is_empty()
    assert backend.num_keys() == 0


def test_map_on_read_and_write_extends_the_entry_read(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    config = ttl_config(update=StateTtlConfig.UpdateType.OnReadAndWrite)
    state = backend.get_state(with_ttl(MapStateDescriptor("m"), config))
    state.put_all({"read": 1, "unread": 2})
    clock.advance(900)
    assert state.get("read") == 1
    clock.advance(900)
    assert dict(state.items()) == {"read": 1}


def test_map_return_expired_if_not_cleaned_up(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    config = ttl_config(visibility=StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)
    state = backend.get_state(with_ttl(MapStateDescriptor("m"), config))
    state.put("a", 1)
    clock.advance(TTL)
    assert state.items() == [("a", 1)]
    assert state.items() == []


def test_reducing_state_restarts_after_expiry(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    state = backend.get_state(with_ttl(ReducingStateDescriptor("r", lambda a, b: a + b)))
    state.add(1)
    state.add(2)
    clock.advance(TTL)
    state.add(10)
    assert state.get() == 10
    clock.advance(TTL - 1)
    assert state.get() == 10
    clock.advance(1)
    assert state.get() is None


def test_aggregating_state_restarts_after_expiry(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    state = backend.get_state(with_ttl(AggregatingStateDescriptor("a", Average())))
    state.add(1.0)
    clock.advance(TTL)
    assert state.get() is None
    state.add(4.0)
    state.add(6.0)
    assert state.get() == 5.0


def test_merge_namespaces_skips_expired_sources(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    state = backend.get_state(with_ttl(ReducingStateDescriptor("r", lambda a, b: a + b)))
    state.set_current_namespace((0, 5))
    state.add("expired")
    clock.advance(TTL)
    state.set_current_namespace((3, 8))
    state.add("b")
    state.set_current_namespace((7, 9))
    state.add("a")
    state.merge_namespaces((7, 9), [(0, 5), (3, 8)])
    assert state.get() == "ab"
    clock.advance(TTL - 1)
    assert state.get() == "ab", "a merge writes the merged value, so it is fresh"


def test_merge_namespaces_of_ttl_list_and_aggregating_state(
    backend: KeyedStateBackend, clock: clock_mod.ManualClock
) -> None:
    lists = backend.get_state(with_ttl(ListStateDescriptor("l")))
    averages = backend.get_state(with_ttl(AggregatingStateDescriptor("a", Average())))
    for namespace, value in [((0, 5), 1.0), ((3, 8), 3.0)]:
        for state in (lists, averages):
            state.set_current_namespace(namespace)
            state.add(value)
    for state in (lists, averages):
        state.merge_namespaces((0, 8), [(0, 5), (3, 8)])
        state.set_current_namespace((0, 8))
    assert sorted(lists.get()) == [1.0, 3.0]
    assert averages.get() == 2.0


def test_ttl_state_without_current_key_is_a_state_error(backend: KeyedStateBackend) -> None:
    from streamjob import errors

    state = backend.get_state(with_ttl(ValueStateDescriptor("v")))
    backend.current_key = None
    backend.current_key_group = None
    with pytest.raises(errors.StateError, match="no current key"):
        state.value()
