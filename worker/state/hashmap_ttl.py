"""Hashmap state objects with TTL: each stored value carries its last-access timestamp.

Chosen by :mod:`streamjob.state.hashmap` instead of :mod:`streamjob.state.hashmap_states` when
the descriptor has a :class:`~streamjob.state.ttl.StateTtlConfig`, so state without TTL never
pays for it. Stored values: ``(v, ts)`` (the accumulator for aggregating state). ListState
and MapState with TTL are in :mod:`streamjob.state.hashmap_ttl_collections`.

Semantics follow Flink's TTL decorators (``AbstractTtlDecorator.getWithTtlCheckAndUpdate``): a
read that finds an expired value removes it and returns it only with
``ReturnExpiredIfNotCleanedUp``; an unexpired value read under ``OnReadAndWrite`` gets a fresh
timestamp; writes always stamp ``now``; an expired accumulator is discarded before a new value
is reduced or aggregated into it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamjob import clock as clock_mod
from streamjob.state import api, descriptors, hashmap_access, hashmap_table, hashmap_ttl_collections

if TYPE_CHECKING:
    from streamjob.state import backend as backend_mod

MISSING = hashmap_access.MISSING


class TtlValueState(hashmap_access.TtlState, api.ValueState[Any]):
    __slots__ = ("_copy_default", "_default")

    def __init__(
        self,
        backend: backend_mod.KeyedStateBackend,
        table: hashmap_table.StateTable,
        clock: clock_mod.Clock,
    ) -> None:
        super().__init__(backend, table, clock)
        assert isinstance(table.descriptor, descriptors.ValueStateDescriptor)
        self._default = table.descriptor.default_value
        self._copy_default = not isinstance(self._default, hashmap_access.IMMUTABLE_DEFAULTS)

    def value(self) -> Any:
        value = self._read(self._ns)
        if value is not MISSING:
            return value
        return copy.deepcopy(self._default) if self._copy_default else self._default

    def update(self, value: Any) -> None:
        if value is None:
            self.clear()
            return
        table, k = self._locate(self._ns)
        table[k] = (value, self._clock.now_ms())


class TtlReducingState(hashmap_access.TtlState, api.ReducingState[Any]):
    __slots__ = ("_reduce",)

    def __init__(
        self,
        backend: backend_mod.KeyedStateBackend,
        table: hashmap_table.StateTable,
        clock: clock_mod.Clock,
    ) -> None:
        super().__init__(backend, table, clock)
        assert isinstance(table.descriptor, descriptors.ReducingStateDescriptor)
        self._reduce = table.descriptor.reduce

    def get(self) -> Any:
        value = self._read(self._ns)
        return None if value is MISSING else value

    def add(self, value: Any) -> None:
        if value is None:
            self.clear()
            return
        now = self._clock.now_ms()
        current = self._pop_unexpired(self._ns, now)
        table, k = self._locate(self._ns)
        table[k] = (value if current is MISSING else self._reduce(current, value), now)

    def merge_namespaces(self, target: api.Namespace, sources: Sequence[api.Namespace]) -> None:
        now = self._clock.now_ms()
        merged: Any = MISSING
        for source in sources:
            value = self._pop_unexpired(source, now)
            if value is not MISSING:
                merged = value if merged is MISSING else self._reduce(merged, value)
        if merged is not MISSING:
            current = self._pop_unexpired(target, now)
            if current is not MISSING:
                merged = self._reduce(current, merged)
            table, k = self._locate(target)
            table[k] = (merged, now)


class TtlAggregatingState(hashmap_access.TtlState, api.AggregatingState[Any, Any]):
    __slots__ = ("_function",)

    def __init__(
        self,
        backend: backend_mod.KeyedStateBackend,
        table: hashmap_table.StateTable,
        clock: clock_mod.Clock,
    ) -> None:
        super().__init__(backend, table, clock)
        assert isinstance(table.descriptor, descriptors.AggregatingStateDescriptor)
        self._function = table.descriptor.aggregate_function

    def get(self) -> Any:
        acc = self._read(self._ns)
        return None if acc is MISSING else self._function.get_result(acc)

    def add(self, value: Any) -> None:
        if value is None:
            self.clear()
            return
        now = self._clock.now_ms()
        acc = self._pop_unexpired(self._ns, now)
        if acc is MISSING:
            acc = self._function.create_accumulator()
        table, k = self._locate(self._ns)
        table[k] = (self._function.add(value, acc), now)

    def merge_namespaces(self, target: api.Namespace, sources: Sequence[api.Namespace]) -> None:
        now = self._clock.now_ms()
        merge = self._function.merge
        merged: Any = MISSING
        for source in sources:
            acc = self._pop_unexpired(source, now)
            if acc is not MISSING:
                merged = acc if merged is MISSING else merge(merged, acc)
        if merged is not MISSING:
            current = self._pop_unexpired(target, now)
            if current is not MISSING:
                merged = merge(current, merged)
            table, k = self._locate(target)
            table[k] = (merged, now)


def create(
    backend: backend_mod.KeyedStateBackend,
    table: hashmap_table.StateTable,
    clock: clock_mod.Clock,
) -> hashmap_access.TtlState:
    """The TTL state object for a table whose descriptor has a TTL."""
    kinds: list[tuple[type[descriptors.StateDescriptor], type[hashmap_access.TtlState]]] = [
        (descriptors.ValueStateDescriptor, TtlValueState),
        (descriptors.ListStateDescriptor, hashmap_ttl_collections.TtlListState),
        (descriptors.MapStateDescriptor, hashmap_ttl_collections.TtlMapState),
        (descriptors.ReducingStateDescriptor, TtlReducingState),
        (descriptors.AggregatingStateDescriptor, TtlAggregatingState),
    ]
    descriptor = table.descriptor
    for descriptor_type, state_type in kinds:
        if isinstance(descriptor, descriptor_type):
            return state_type(backend, table, clock)
    raise TypeError(f"unknown state descriptor {descriptor!r}")
