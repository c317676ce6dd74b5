"""Hashmap state objects without TTL: the per-record hot path of keyed state.

Each object reads ``backend.current_key`` and ``backend.current_key_group`` (plain slots) at
every access and goes straight to ``tables[kg]`` (void namespace, keyed by the key) or
``ns_tables[kg]`` (keyed by ``(key, namespace)``) of its :class:`StateTable`
(:mod:`streamjob.state.hashmap_table`). No TTL branch (TTL states are other classes, in
:mod:`streamjob.state.hashmap_ttl`), no allocation in the void namespace.

Stored values: value/reducing ``v``, aggregating the accumulator, list a Python ``list``
(never empty), map a ``dict`` (never empty). Shared plumbing: :mod:`streamjob.state.hashmap_access`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streamjob import errors
from streamjob.state import api, descriptors, hashmap_access, hashmap_table

if TYPE_CHECKING:
    from streamjob.state import backend as backend_mod

MISSING = hashmap_access.MISSING


class HashMapValueState(hashmap_access.HashMapState, api.ValueState[Any]):
    __slots__ = ("_default",)

    def __init__(
        self, backend: backend_mod.KeyedStateBackend, table: hashmap_table.StateTable
    ) -> None:
        super().__init__(backend, table)
        assert isinstance(table.descriptor, descriptors.ValueStateDescriptor)
        self._default = table.descriptor.default_value

    def value(self) -> Any:
        b = self._backend
        try:
            if self._ns is None:
                return self._tables[b.current_key_group].get(b.current_key, self._default)  # type: ignore[index]
            return self._ns_tables[b.current_key_group].get(  # type: ignore[index]
                (b.current_key, self._ns), self._default
            )
        except hashmap_access.ACCESS_ERRORS:
            self._check_access()
            raise

    def update(self, value: Any) -> None:
        b = self._backend
        if value is None:
            self.clear()
            return
        try:
            if self._ns is None:
                self._tables[b.current_key_group][b.current_key] = value  # type: ignore[index]
            else:
                self._ns_tables[b.current_key_group][(b.current_key, self._ns)] = value  # type: ignore[index]
        except hashmap_access.ACCESS_ERRORS:
            self._check_access()
            raise


class HashMapCopyingValueState(HashMapValueState):
    """A value state whose default value is mutable: each read of it gets a fresh copy."""

    __slots__ = ()

    def value(self) -> Any:
        table, k = self._locate(self._ns)
        stored = table.get(k, MISSING)
        return copy.deepcopy(self._default) if stored is MISSING else stored


class HashMapListState(hashmap_access.HashMapState, api.ListState[Any]):
    __slots__ = ()

    def get(self) -> list[Any]:
        table, k = self._locate(self._ns)
        stored = table.get(k)
        return [] if stored is None else list(stored)

    def add(self, value: Any) -> None:
        if value is None:
            raise errors.StateError(f"ListState {self._name!r}: None cannot be added to a list")
        table, k = self._locate(self._ns)
        stored = table.get(k)
        if stored is None:
            table[k] = [value]
        else:
            stored.append(value)

    def add_all(self, values: Iterable[Any]) -> None:
        new = self._checked(values)
        if not new:
            return
        table, k = self._locate(self._ns)
        stored = table.get(k)
        if stored is None:
            table[k] = new
        else:
            stored.extend(new)

    def update(self, values: Iterable[Any]) -> None:
        new = self._checked(values)
        table, k = self._locate(self._ns)
        if new:
            table[k] = new
        else:
            table.pop(k, None)

    def _checked(self, values: Iterable[Any]) -> list[Any]:
        new = list(values)
        if any(value is None for value in new):
            raise errors.StateError(f"ListState {self._name!r}: None cannot be added to a list")
        return new

    def merge_namespaces(self, target: api.Namespace, sources: Sequence[api.Namespace]) -> None:
        merged: list[Any] = []
        for source in sources:
            stored = self._pop(source)
            if stored is not MISSING:
                merged.extend(stored)
        if merged:
            table, k = self._locate(target)
            table.setdefault(k, []).extend(merged)


class HashMapMapState(hashmap_access.HashMapState, api.MapState[Any, Any]):
    __slots__ = ()

    def _map(self) -> dict[Any, Any] | None:
        table, k = self._locate(self._ns)
        stored: dict[Any, Any] | None = table.get(k)
        return stored

    def get(self, key: Any) -> Any:
        stored = self._map()
        return None if stored is None else stored.get(key)

    def put(self, key: Any, value: Any) -> None:
        table, k = self._locate(self._ns)
        stored = table.get(k)
        if stored is None:
            table[k] = {key: value}
        else:
            stored[key] = value

    def put_all(self, entries: Mapping[Any, Any]) -> None:
        if not entries:
            return
        table, k = self._locate(self._ns)
        table.setdefault(k, {}).update(entries)

    def remove(self, key: Any) -> None:
        table, k = self._locate(self._ns)
        stored = table.get(k)
        if stored is not None:
            stored.pop(key, None)
            if not stored:
                del table[k]

    def contains(self, key: Any) -> bool:
        stored = self._map()
        return stored is not None and key in stored

    def keys(self) -> list[Any]:
        stored = self._map()
        return [] if stored is None else list(stored)

    def values(self) -> list[Any]:
        stored = self._map()
        return [] if stored is None else list(stored.values())

    def items(self) -> list[tuple[Any, Any]]:
        stored = self._map()
        return [] if stored is None else list(stored.items())

    def is_empty(self) -> bool:
        return not self._map()


class HashMapReducingState(hashmap_access.HashMapState, api.ReducingState[Any]):
    __slots__ = ("_reduce",)

    def __init__(
        self, backend: backend_mod.KeyedStateBackend, table: hashmap_table.StateTable
    ) -> None:
        super().__init__(backend, table)
        assert isinstance(table.descriptor, descriptors.ReducingStateDescriptor)
        self._reduce = table.descriptor.reduce

    def get(self) -> Any:
        table, k = self._locate(self._ns)
        return table.get(k)

    def add(self, value: Any) -> None:
        """Reduce ``value`` into the state; ``add(None)`` clears it, as in Flink."""
        if value is None:
            self.clear()
            return
        table, k = self._locate(self._ns)
        stored = table.get(k, MISSING)
        table[k] = value if stored is MISSING else self._reduce(stored, value)

    def merge_namespaces(self, target: api.Namespace, sources: Sequence[api.Namespace]) -> None:
        merged: Any = MISSING
        for source in sources:
            stored = self._pop(source)
            if stored is not MISSING:
                merged = stored if merged is MISSING else self._reduce(merged, stored)
        if merged is not MISSING:
            table, k = self._locate(target)
            current = table.get(k, MISSING)
            table[k] = merged if current is MISSING else self._reduce(current, merged)


class HashMapAggregatingState(hashmap_access.HashMapState, api.AggregatingState[Any, Any]):
    __slots__ = ("_function",)

    def __init__(
        self, backend: backend_mod.KeyedStateBackend, table: hashmap_table.StateTable
    ) -> None:
        super().__init__(backend, table)
        assert isinstance(table.descriptor, descriptors.AggregatingStateDescriptor)
        self._function = table.descriptor.aggregate_function

    def get(self) -> Any:
        table, k = self._locate(self._ns)
        acc = table.get(k, MISSING)
        return None if acc is MISSING else self._function.get_result(acc)

    def add(self, value: Any) -> None:
        """Aggregate ``value`` into the state; ``add(None)`` clears it, as in Flink."""
        if value is None:
            self.clear()
            return
        table, k = self._locate(self._ns)
        acc = table.get(k, MISSING)
        if acc is MISSING:
            acc = self._function.create_accumulator()
        table[k] = self._function.add(value, acc)

    def merge_namespaces(self, target: api.Namespace, sources: Sequence[api.Namespace]) -> None:
        merge = self._function.merge
        merged: Any = MISSING
        for source in sources:
            acc = self._pop(source)
            if acc is not MISSING:
                merged = acc if merged is MISSING else merge(merged, acc)
        if merged is not MISSING:
            table, k = self._locate(target)
            current = table.get(k, MISSING)
            table[k] = merged if current is MISSING else merge(current, merged)


def create(
    backend: backend_mod.KeyedStateBackend, table: hashmap_table.StateTable
) -> hashmap_access.HashMapState:
    """The state object for a table whose descriptor has no TTL."""
    descriptor = table.descriptor
    if isinstance(descriptor, descriptors.ValueStateDescriptor):
        if isinstance(descriptor.default_value, hashmap_access.IMMUTABLE_DEFAULTS):
            return HashMapValueState(backend, table)
        return HashMapCopyingValueState(backend, table)
    kinds: list[tuple[type[descriptors.StateDescriptor], type[hashmap_access.HashMapState]]] = [
        (descriptors.ListStateDescriptor, HashMapListState),
        (descriptors.MapStateDescriptor, HashMapMapState),
        (descriptors.ReducingStateDescriptor, HashMapReducingState),
        (descriptors.AggregatingStateDescriptor, HashMapAggregatingState),
    ]
    for descriptor_type, state_type in kinds:
        if isinstance(descriptor, descriptor_type):
            return state_type(backend, table)
    raise TypeError(f"unknown state descriptor {descriptor!r}")
