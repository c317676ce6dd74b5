"""Where the hashmap backend keeps one state's data: dicts indexed directly by key group.

A :class:`StateTable` has two lists of ``max_parallelism`` dicts: ``tables[kg]`` maps a key to
its stored value in the void namespace (the hot path: no tuple is built), ``ns_tables[kg]`` maps
``(key, namespace)`` for every other namespace. Slots of key groups outside the backend's range
hold a shared :class:`_ForeignKeyGroup` that refuses every access. What a "stored value" is
depends on the kind and TTL (see :mod:`streamjob.state.hashmap_snapshot`).

Copy-on-write snapshots: while a snapshot has not serialized key group ``kg`` yet, both slots of
``kg`` hold a :class:`~streamjob.state.hashmap_guard.PendingKeyGroup` in front of the real dict
(:meth:`StateTable.guard`), which keeps each entry's value at the barrier before it changes, or
has the snapshot serialize the whole key group first (see :mod:`streamjob.state.hashmap_guard`).
The state objects reach it as they reach any dict: the hot path costs nothing outside
snapshots, no flag is tested per access. The snapshot reads ``kg`` as it was at the barrier
(:meth:`StateTable.as_of_snapshot`), then puts the real dicts back
(:meth:`StateTable.release`); the table's bookkeeping (counts, sizes) reads the live dicts
(:meth:`StateTable.live`).

Neighbours: the state classes (:mod:`streamjob.state.hashmap_states`,
:mod:`streamjob.state.hashmap_ttl`) read and write the dicts; :mod:`streamjob.state.hashmap`
owns the tables.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from streamjob import errors, keygroups
from streamjob.state import canonical, descriptors, hashmap_guard, meta

live = hashmap_guard.live


class _ForeignKeyGroup(dict[Any, Any]):
    """Stands in for a key group this backend does not own; every access raises."""

    __slots__ = ("_range",)

    def __init__(self, key_group_range: keygroups.KeyGroupRange) -> None:
        super().__init__()
        self._range = key_group_range

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise errors.StateError(
            "the current key group is outside this backend's key groups "
            f"{self._range.to_list()}: the record was routed to the wrong subtask, or "
            "current_key_group was not computed with this job's max_parallelism"
        )

    get = __getitem__ = __setitem__ = __delitem__ = __contains__ = pop = setdefault = _refuse
    update = _refuse


class StateTable:
    """The data of one registered state in one hashmap backend."""

    __slots__ = (
        "descriptor",
        "freeze",
        "info",
        "key_group_range",
        "meta_head",
        "ns_tables",
        "tables",
    )

    def __init__(
        self,
        descriptor: descriptors.StateDescriptor,
        *,
        max_parallelism: int,
        key_group_range: keygroups.KeyGroupRange,
    ) -> None:
        self.descriptor = descriptor
        self.info: meta.StateMetaInfo = descriptor.meta_info()
        self.meta_head = canonical.encode_state_meta(self.info)
        self.freeze = hashmap_guard.freezer(self.info)
        self.key_group_range = key_group_range
        foreign = _ForeignKeyGroup(key_group_range)
        self.tables: list[dict[Any, Any]] = [foreign] * max_parallelism
        self.ns_tables: list[dict[Any, Any]] = [foreign] * max_parallelism
        for kg in key_group_range:
            self.tables[kg] = {}
            self.ns_tables[kg] = {}

    def live(self, key_group: int) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """The real void and namespaced dicts of ``key_group``, never touching a guard."""
        return live(self.tables[key_group]), live(self.ns_tables[key_group])

    def as_of_snapshot(self, key_group: int) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """The void and namespaced dicts of ``key_group`` as a pending snapshot must see
        them (the live ones when no snapshot guards the key group)."""
        as_of = hashmap_guard.as_of_snapshot
        return as_of(self.tables[key_group]), as_of(self.ns_tables[key_group])

    def guard(self, key_group: int, touch: Callable[[int], None]) -> None:
        """Put a guard in front of both dicts of ``key_group``."""
        for slots in (self.tables, self.ns_tables):
            slot = slots[key_group]
            if type(slot) is not hashmap_guard.PendingKeyGroup:
                slots[key_group] = hashmap_guard.PendingKeyGroup(
                    slot, key_group, touch, self.freeze
                )

    def release(self, key_group: int) -> int:
        """Put the real dicts of ``key_group`` back (a no-op if they are not guarded); the
        number of entries the guards had saved."""
        saved = 0
        for slots in (self.tables, self.ns_tables):
            slot = slots[key_group]
            if type(slot) is hashmap_guard.PendingKeyGroup:
                saved += len(slot.saved or ())
                slot.saved = None  # whoever still holds the guard now just delegates
                slots[key_group] = slot.real
        return saved

    def is_empty(self, key_group: int) -> bool:
        void, spaced = self.live(key_group)
        return not void and not spaced

    def entries(self, key_group: int) -> Iterator[tuple[Any, Any, Any]]:
        """``(key, namespace, stored)`` of one key group, void namespace first."""
        void, spaced = self.live(key_group)
        for key, stored in void.items():
            yield key, None, stored
        for (key, namespace), stored in spaced.items():
            yield key, namespace, stored

    def put(self, key_group: int, key: Any, namespace: Any, stored: Any) -> None:
        if namespace is None:
            self.tables[key_group][key] = stored
        else:
            self.ns_tables[key_group][(key, namespace)] = stored

    def keys_with_groups(self, namespace: Any) -> list[tuple[int, Any]]:
        """``(kg, key)`` of every key with state in ``namespace``."""
        found: list[tuple[int, Any]] = []
        for kg in self.key_group_range:
            void, spaced = self.live(kg)
            if namespace is None:
                found.extend((kg, key) for key in void)
            else:
                found.extend((kg, key) for key, ns in spaced if ns == namespace)
        return found

    def count(self) -> int:
        return sum(len(void) + len(spaced) for void, spaced in map(self.live, self.key_group_range))

    def approx_size_bytes(self, *, sample: int = 32) -> int:
        """Dict overhead plus entries times the shallow size of a few sampled entries."""
        total = 0
        sampled: list[int] = []
        for kg in self.key_group_range:
            for table in self.live(kg):
                total += sys.getsizeof(table)
                for key, stored in table.items():
                    if len(sampled) >= sample:
                        break
                    sampled.append(_shallow_size(key) + _shallow_size(stored))
        if sampled:
            total += self.count() * sum(sampled) // len(sampled)
        return total

    def clear(self) -> None:
        for kg in self.key_group_range:
            self.release(kg)
            self.tables[kg].clear()
            self.ns_tables[kg].clear()


def _shallow_size(obj: Any) -> int:
    """``getsizeof`` of ``obj`` plus, for containers, its length times a sampled item size."""
    size = sys.getsizeof(obj)
    items: list[Any]
    if isinstance(obj, list | tuple):
        items = list(obj[:16])
    elif isinstance(obj, dict):
        items = list(obj.items())[:16]
    else:
        return size
    if items:
        sampled = sum(_leaf_size(item) for item in items)
        size += sampled * len(obj) // len(items)
    return size


def _leaf_size(item: Any) -> int:
    if isinstance(item, tuple):
        return sum(sys.getsizeof(part) for part in item)
    return sys.getsizeof(item)
