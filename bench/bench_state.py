"""Micro-benchmark of the keyed-state hot path: ``ValueState.value()`` + ``update()``.

Drives the hashmap backend the way the runtime does: two attribute stores set the current key
and key group, then one read and one write of a ValueState without TTL in the void namespace.
Prints ns per value()+update() pair (best of several runs) and ends with one JSON line
``{"bench": "state", ...}``. Also measures the TTL and namespaced variants for comparison.
"""

from __future__ import annotations

import json
import time
from typing import Any

from streamjob import clock, keygroups
from streamjob.duration import Duration
from streamjob.state import HashMapStateBackend, StateTtlConfig, ValueStateDescriptor

MAX_PARALLELISM = 128
KEYS = 10_000
ROUNDS = 5


def _prepare(
    descriptor: ValueStateDescriptor[int],
) -> tuple[HashMapStateBackend, Any, list[Any], list[int]]:
    backend = HashMapStateBackend(
        max_parallelism=MAX_PARALLELISM,
        key_group_range=keygroups.KeyGroupRange(0, MAX_PARALLELISM - 1),
        clock=clock.ManualClock(1_000),
    )
    state = backend.get_state(descriptor)
    keys = [f"user-{i}" for i in range(KEYS)]
    kgs = [keygroups.assign_to_key_group(key, MAX_PARALLELISM) for key in keys]
    return backend, state, keys, kgs


def _run(descriptor: ValueStateDescriptor[int], namespace: Any = None) -> float:
    """Best ns per pair (the loop's own cost subtracted)."""
    backend, state, keys, kgs = _prepare(descriptor)
    state.set_current_namespace(namespace)
    pairs = list(zip(keys, kgs, strict=True)) * 20
    best_state = best_loop = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for key, kg in pairs:
            backend.current_key = key
            backend.current_key_group = kg
            state.update(state.value() + 1)
        best_state = min(best_state, time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        for key, kg in pairs:
            backend.current_key = key
            backend.current_key_group = kg
            _ = 0 + 1
        best_loop = min(best_loop, time.perf_counter_ns() - start)
    backend.current_key, backend.current_key_group = keys[0], kgs[0]
    assert state.value() == 20 * ROUNDS, "every key was updated once per pass"
    return (best_state - best_loop) / len(pairs)


def _snapshot_keys_per_second() -> float:
    """Canonical snapshot throughput of a pickled ValueState (all key groups, one pass)."""
    backend, state, keys, kgs = _prepare(ValueStateDescriptor("count", default_value=0))
    for copy in range(10):  # 100k entries; the key group does not need to match for timing
        for key, kg in zip(keys, kgs, strict=True):
            backend.current_key = f"{key}/{copy}"
            backend.current_key_group = kg
            state.update(7)
    entries = backend.num_keys()
    start = time.perf_counter()
    size = sum(len(blob) for _, blob in backend.iter_snapshot(backend.key_group_range))
    elapsed = time.perf_counter() - start
    assert size > entries
    return entries / elapsed


def main() -> None:
    plain = _run(ValueStateDescriptor("count", default_value=0))
    windowed = _run(ValueStateDescriptor("count", default_value=0), namespace=(0, 10_000))
    ttl_descriptor: ValueStateDescriptor[int] = ValueStateDescriptor("count", default_value=0)
    ttl_descriptor.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_hours(1)).build())
    with_ttl = _run(ttl_descriptor)
    snapshot_rate = _snapshot_keys_per_second()
    print(f"ValueState value()+update(), no TTL, void namespace: {plain:7.1f} ns per pair")
    print(f"ValueState value()+update(), window namespace:       {windowed:7.1f} ns per pair")
    print(f"ValueState value()+update(), with TTL:               {with_ttl:7.1f} ns per pair")
    print(f"canonical snapshot of a ValueState:                 {snapshot_rate:9.0f} keys/s")
    print(
        json.dumps(
            {
                "bench": "state",
                "backend": "hashmap",
                "value_update_ns": round(plain, 1),
                "value_update_namespace_ns": round(windowed, 1),
                "value_update_ttl_ns": round(with_ttl, 1),
                "snapshot_keys_per_s": round(snapshot_rate),
                "keys": KEYS,
            }
        )
    )


if __name__ == "__main__":
    main()
