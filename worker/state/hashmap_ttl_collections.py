"""Hashmap ListState and MapState with TTL: every list element and map entry expires alone.

Stored values: list ``[(v, ts), ...]``, map ``{user_key: (v, ts)}``. Reads drop expired
elements and entries from the state; with ``ReturnExpiredIfNotCleanedUp`` that read still
returns them; with ``OnReadAndWrite`` it refreshes the ones it returns. The single-value TTL
states are in :mod:`streamjob.state.hashmap_ttl`, the shared rules in
:mod:`streamjob.state.hashmap_access`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from streamjob import errors
from streamjob.state import api, hashmap_access

MISSING = hashmap_access.MISSING


class TtlListState(hashmap_access.TtlState, api.ListState[Any]):
    """Each element expires on its own; ``get()`` drops expired elements from the state."""

    __slots__ = ()

    def get(self) -> list[Any]:
        table, k = self._locate(self._ns)
        stored = table.get(k)
        if stored is None:
            return []
        now = self._clock.now_ms()
        ttl = self._ttl
        fresh = [(value, ts) for value, ts in stored if ts + ttl > now]
        if not fresh:
            del table[k]
        elif self._update_on_read:
            table[k] = [(value, now) for value, _ in fresh]
        elif len(fresh) < len(stored):
            table[k] = fresh
        return [value for value, _ in (stored if self._return_expired else fresh)]

    def add(self, value: Any) -> None:
        self.add_all([value])

    def add_all(self, values: Iterable[Any]) -> None:
        new = self._stamped(values)
        if new:
            table, k = self._locate(self._ns)
            table.setdefault(k, []).extend(new)

    def update(self, values: Iterable[Any]) -> None:
        new = self._stamped(values)
        table, k = self._locate(self._ns)
        if new:
            table[k] = new
        else:
            table.pop(k, None)

    def _stamped(self, values: Iterable[Any]) -> list[tuple[Any, int]]:
        now = self._clock.now_ms()
        new = [(value, now) for value in values]
        if any(value is None for value, _ in new):
            raise errors.StateError(f"ListState {self._name!r}: None cannot be added to a list")
        return new

    def merge_namespaces(self, target: api.Namespace, sources: Sequence[api.Namespace]) -> None:
        merged: list[tuple[Any, int]] = []
        for source in sources:
            stored = self._pop(source)
            if stored is not MISSING:
                merged.extend(stored)
        if merged:
            table, k = self._locate(target)
            table.setdefault(k, []).extend(merged)


class TtlMapState(hashmap_access.TtlState, api.MapState[Any, Any]):
    """Each user entry expires on its own."""

    __slots__ = ()

    def get(self, key: Any) -> Any:
        value = self._read_entry(key)
        return None if value is MISSING else value

    def _read_entry(self, key: Any) -> Any:
        table, k = self._locate(self._ns)
        stored: dict[Any, Any] | None = table.get(k)
        if stored is None or (entry := stored.get(key)) is None:
            return MISSING
        value, ts = entry
        now = self._clock.now_ms()
        if ts + self._ttl <= now:
            del stored[key]
            if not stored:
                del table[k]
            return value if self._return_expired else MISSING
        if self._update_on_read:
            stored[key] = (value, now)
        return value

    def _read_all(self) -> list[tuple[Any, Any]]:
        table, k = self._locate(self._ns)
        stored = table.get(k)
        if stored is None:
            return []
        now = self._clock.now_ms()
        visible: list[tuple[Any, Any]] = []
        for key, (value, ts) in list(stored.items()):
            if ts + self._ttl <= now:
                del stored[key]
                if not self._return_expired:
                    continue
            elif self._update_on_read:
                stored[key] = (value, now)
            visible.append((key, value))
        if not stored:
            del table[k]
        return visible

    def put(self, key: Any, value: Any) -> None:
        self.put_all({key: value})

    def put_all(self, entries: Mapping[Any, Any]) -> None:
        if not entries:
            return
        now = self._clock.now_ms()
        table, k = self._locate(self._ns)
        stored = table.setdefault(k, {})
        for key, value in entries.items():
            stored[key] = (value, now)

    def remove(self, key: Any) -> None:
        table, k = self._locate(self._ns)
        stored = table.get(k)
        if stored is not None:
            stored.pop(key, None)
            if not stored:
                del table[k]

    def contains(self, key: Any) -> bool:
        return self._read_entry(key) is not MISSING

    def keys(self) -> list[Any]:
        return [key for key, _ in self._read_all()]

    def values(self) -> list[Any]:
        return [value for _, value in self._read_all()]

    def items(self) -> list[tuple[Any, Any]]:
        return self._read_all()

    def is_empty(self) -> bool:
        return not self._read_all()
