"""The RocksDB backend's write-back cache: deserialized values in dicts, written back in batches.

Single-value states (value, reducing, aggregating) keep, per key group, a
:class:`KeyGroupCache`: a dict of key (or ``(key, namespace)``) -> deserialized value. It looks
and behaves like the hashmap backend's per-key-group dicts, so the hashmap's single-value state
classes (and their TTL rules) run on it unchanged: a miss reads RocksDB once and keeps the value
(or :data:`ABSENT`); a write only touches the dict and marks the key dirty. ListState and
MapState keep their raw pending writes in a :class:`PendingWrites` instead (one RocksDB entry
per element or user key, see :mod:`streamjob.state.rocksdb.collections`).

The cache is bounded: every new entry counts against its state's limit; when a state reaches
it, the backend writes every dirty entry and pending write of all states as one WriteBatch and
drops that state's cached values. It also writes back at every barrier (before a snapshot), and
a ListState or MapState before scanning its range. A value a function mutates without
``update()`` is therefore not guaranteed to persist, exactly as in Flink's RocksDB backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from streamjob import errors, keycodec, keygroups
from streamjob.state import serializers
from streamjob.state.rocksdb import db as db_mod
from streamjob.state.rocksdb import layout


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""Cached marker: the key has no value in RocksDB (or had it deleted in the cache)."""

_MISS: Any = object()
_dict_get = dict.get
_dict_set = dict.__setitem__
_dict_contains = dict.__contains__


class ValueCodec:
    """Stored value <-> RocksDB value bytes: ``v`` or, with a TTL, ``(v, ts)``."""

    __slots__ = ("decode", "encode")

    def __init__(self, serializer: serializers.TypeSerializer, *, with_ttl: bool) -> None:
        serialize = serializer.serialize
        deserialize = serializer.deserialize
        if with_ttl:

            def encode(stored: Any) -> bytes:
                return layout.stamp(stored[1], serialize(stored[0]))

            def decode(data: bytes) -> Any:
                ts, value = layout.unstamp(data)
                return (deserialize(value), ts)

            self.encode: Callable[[Any], bytes] = encode
            self.decode: Callable[[bytes], Any] = decode
        else:
            self.encode = serialize
            self.decode = deserialize


class KeyGroupCache(dict[Any, Any]):
    """Cached values of one single-value state in one key group (see the module docstring).

    ``void`` caches key -> value in the void namespace; otherwise keys are ``(key, namespace)``.
    Implements the dict methods the hashmap state classes use, reading through to RocksDB.
    """

    __slots__ = ("_codec", "_dirty", "_get", "_listed", "_prefix", "_raw", "_store", "_void")

    def __init__(
        self,
        *,
        prefix: bytes,
        void: bool,
        column: db_mod.Column,
        codec: ValueCodec,
        store: SingleValueStore,
    ) -> None:
        super().__init__()
        self._prefix = prefix
        self._void = void
        self._get = column.get
        self._codec = codec
        self._store = store
        self._listed = False
        self._dirty: set[Any] = set()
        self._raw: dict[Any, bytes] = {}

    def _list(self) -> None:
        if not self._listed:
            self._listed = True
            self._store.touched.append(self)

    def _new_entry(self) -> None:
        """Count an entry (after adding it) and let the store make room when it is over its
        limit (which may evict this very entry: it was written back first)."""
        store = self._store
        if not self._listed:
            self._listed = True
            store.touched.append(self)
        store.count += 1
        if store.count > store.limit:
            store.on_full()

    def _mark(self, key: Any) -> None:
        """Mark ``key`` dirty; the cache may have been evicted meanwhile, so list it again."""
        self._dirty.add(key)
        if not self._listed:
            self._list()

    def _raw_key(self, key: Any) -> bytes:
        raw = self._raw.get(key)
        if raw is None:
            if self._void:
                raw = self._prefix + keycodec.encode_key(key) + layout.VOID
            else:
                raw = self._prefix + keycodec.encode_key(key[0]) + keycodec.encode_key(key[1])
        return raw

    def _load(self, key: Any) -> Any:
        raw = self._raw_key(key)
        data = self._get(raw)
        value = ABSENT if data is None else self._codec.decode(data)
        _dict_set(self, key, value)
        self._raw[key] = raw
        self._new_entry()
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = _dict_get(self, key, _MISS)
        if value is _MISS:
            value = self._load(key)
        return default if value is ABSENT else value

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, _MISS)
        if value is _MISS:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISS) is not _MISS

    def __setitem__(self, key: Any, value: Any) -> None:
        new = not _dict_contains(self, key)
        _dict_set(self, key, value)
        self._dirty.add(key)
        if new:
            self._new_entry()
        elif not self._listed:
            self._list()

    def __delitem__(self, key: Any) -> None:
        if self.get(key, _MISS) is _MISS:
            raise KeyError(key)
        _dict_set(self, key, ABSENT)
        self._mark(key)

    def pop(self, key: Any, default: Any = _MISS) -> Any:
        value = self.get(key, _MISS)
        if value is _MISS:
            if default is _MISS:
                raise KeyError(key)
            return default
        _dict_set(self, key, ABSENT)
        self._mark(key)
        return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = self.get(key, _MISS)
        if value is _MISS:
            self[key] = default
            return default
        return value

    def write_back(self, batch: db_mod.Batch, column: db_mod.Column) -> None:
        """Put every dirty entry into ``batch`` (deletes for removed ones)."""
        if not self._dirty:
            return
        encode = self._codec.encode
        for key in self._dirty:
            value = _dict_get(self, key)
            raw = self._raw_key(key)
            if value is ABSENT:
                batch.delete(column, raw)
            else:
                batch.put(column, raw, encode(value))
        self._dirty.clear()

    def evict(self) -> None:
        """Drop the cached values (only after :meth:`write_back`)."""
        dict.clear(self)
        self._raw.clear()
        self._listed = False


class ForeignKeyGroup(dict[Any, Any]):
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


class PendingWrites:
    """Raw writes of one ListState or MapState not yet in RocksDB (``None`` = delete)."""

    __slots__ = ("column", "limit", "writes")

    def __init__(self, column: db_mod.Column, limit: int) -> None:
        self.column = column
        self.limit = limit
        self.writes: dict[bytes, bytes | None] = {}

    def read(self, raw: bytes) -> bytes | None:
        """The value under ``raw``, pending writes first."""
        if raw in self.writes:
            return self.writes[raw]
        return self.column.get(raw)

    def write_back(self, batch: db_mod.Batch) -> None:
        column = self.column
        for raw, value in self.writes.items():
            if value is None:
                batch.delete(column, raw)
            else:
                batch.put(column, raw, value)
        self.writes.clear()


class SingleValueStore:
    """The caches of one single-value state: a :class:`KeyGroupCache` per owned key group for
    the void namespace (``tables``) and one for the others (``ns_tables``), indexed by key
    group like the hashmap backend's ``StateTable``; foreign key groups refuse access.

    ``touched`` lists the caches holding entries (only they can be dirty); ``count`` is their
    entries, and ``on_full`` runs when it exceeds ``limit``.
    """

    __slots__ = ("column", "count", "limit", "ns_tables", "on_full", "tables", "touched")

    def __init__(
        self,
        *,
        column: db_mod.Column,
        codec: ValueCodec,
        prefixes: dict[int, bytes],
        key_group_range: keygroups.KeyGroupRange,
        max_parallelism: int,
        limit: int,
    ) -> None:
        self.column = column
        self.count = 0
        self.limit = limit
        self.on_full: Callable[[], None] = self.evict
        self.touched: list[KeyGroupCache] = []
        foreign = ForeignKeyGroup(key_group_range)
        self.tables: list[dict[Any, Any]] = [foreign] * max_parallelism
        self.ns_tables: list[dict[Any, Any]] = [foreign] * max_parallelism
        for kg in key_group_range:
            for void, tables in ((True, self.tables), (False, self.ns_tables)):
                tables[kg] = KeyGroupCache(
                    prefix=prefixes[kg], void=void, column=column, codec=codec, store=self
                )

    def write_back(self, batch: db_mod.Batch) -> None:
        for cache in self.touched:
            cache.write_back(batch, self.column)

    def evict(self) -> None:
        """Drop every cached value (only after :meth:`write_back`)."""
        for cache in self.touched:
            cache.evict()
        self.touched.clear()
        self.count = 0
