"""Where the hashmap backend keeps one state's data: dicts indexed directly by key group.

A :class:`StateTable` has two lists of ``max_parallelism`` dicts: ``tables[kg]`` maps a key to
its stored value in the void namespace (the hot path: no tuple is built), ``ns_tables[kg]`` maps
``(key, namespace)`` for every other namespace. Slots of key groups outside the backend's range
hold a shared :class:`_ForeignKeyGroup` that refuses every access. What a "stored value" is
depends on the kind and TTL (see :mod:`streamjob.state.hashmap_snapshot`).

Neighbours: the state classes (:mod:`streamjob.state.hashmap_states`,
:mod:`streamjob.state.hashmap_ttl`) read and write the dicts; :mod:`streamjob.state.hashmap`
owns the tables.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, NoReturn

from streamjob import errors, keygroups
from streamjob.state import canonical, descriptors, meta


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

    __slots__ = ("descriptor", "info", "key_group_range", "meta_head", "ns_tables", "tables")

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
        self.key_group_range = key_group_range
        foreign = _ForeignKeyGroup(key_group_range)
        self.tables: list[dict[Any, Any]] = [foreign] * max_parallelism
        self.ns_tables: list[dict[Any, Any]] = [foreign] * max_parallelism
        for kg in key_group_range:
            self.tables[kg] = {}
            self.ns_tables[kg] = {}

    def is_empty(self, key_group: int) -> bool:
        return not self.tables[key_group] and not self.ns_tables[key_group]

    def entries(self, key_group: int) -> Iterator[tuple[Any, Any, Any]]:
        """``(key, namespace, stored)`` of one key group, void namespace first."""
        for key, stored in self.tables[key_group].items():
            yield key, None, stored
        for (key, namespace), stored in self.ns_tables[key_group].items():
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
            if namespace is None:
                found.extend((kg, key) for key in self.tables[kg])
            else:
                found.extend((kg, key) for key, ns in self.ns_tables[kg] if ns == namespace)
        return found

    def count(self) -> int:
        return sum(len(self.tables[kg]) + len(self.ns_tables[kg]) for kg in self.key_group_range)

    def approx_size_bytes(self, *, sample: int = 32) -> int:
        """Dict overhead plus entries times the shallow size of a few sampled entries."""
        total = 0
        sampled: list[int] = []
        for kg in self.key_group_range:
            for table in (self.tables[kg], self.ns_tables[kg]):
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
