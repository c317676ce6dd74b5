"""ListState and MapState of the RocksDB backend: one RocksDB entry per element or user key.

rocksdict has no merge operator, so a list is not one value appended to in place: each element
is its own entry ``key_group || key || namespace || u64 sequence`` (the backend hands out
increasing sequence numbers, so ``add`` never reads), and each map entry is
``key_group || key || namespace || user key`` (:mod:`streamjob.state.rocksdb.layout`). Writes
go to the state's :class:`~streamjob.state.rocksdb.cache.PendingWrites`; a point read looks
there first; a scan (``get()``, ``items()``, ``clear()``...) writes the pending writes back
first, then reads the key's range. With a TTL every element and entry carries its timestamp and
follows the hashmap backend's rules (:mod:`streamjob.state.hashmap_ttl_collections`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamjob import clock as clock_mod
from streamjob import errors
from streamjob.state import api, hashmap_access, serializers, ttl
from streamjob.state.rocksdb import cache, layout
from streamjob.state.rocksdb import db as db_mod

if TYPE_CHECKING:
    from streamjob.state import backend as backend_mod

MISSING = hashmap_access.MISSING


@dataclass(frozen=True)
class Common:
    """What every list and map state of a backend is built with."""

    name: str
    database: db_mod.StateDB
    pending: cache.PendingWrites
    prefixes: dict[int, bytes]
    serializer: serializers.TypeSerializer
    ttl_config: ttl.StateTtlConfig | None
    clock: clock_mod.Clock
    next_sequence: Callable[[int], int]


class CollectionState(api.State):
    """Shared plumbing: locating the current key's range, pending writes, TTL settings."""

    __slots__ = (
        "_backend",
        "_clock",
        "_db",
        "_name",
        "_next_sequence",
        "_ns",
        "_pending",
        "_prefixes",
        "_return_expired",
        "_serializer",
        "_ttl",
        "_update_on_read",
    )

    def __init__(self, backend: backend_mod.KeyedStateBackend, common: Common) -> None:
        self._backend = backend
        self._name = common.name
        self._db = common.database
        self._pending = common.pending
        self._prefixes = common.prefixes
        self._serializer = common.serializer
        self._clock = common.clock
        self._next_sequence = common.next_sequence
        self._ns: Any = None
        config = common.ttl_config
        self._ttl = 0 if config is None else config.ttl_ms
        self._update_on_read = config is not None and config.update_on_read
        self._return_expired = config is not None and config.return_expired

    def set_current_namespace(self, namespace: api.Namespace) -> None:
        hashmap_access.check_namespace(namespace)
        self._ns = namespace

    def get_current_namespace(self) -> api.Namespace:
        return self._ns  # type: ignore[no-any-return]

    def _prefix(self, namespace: Any) -> bytes:
        b = self._backend
        try:
            kg_prefix = self._prefixes[b.current_key_group]  # type: ignore[index]
        except KeyError:
            self._refuse_access()
        return layout.entry_prefix(kg_prefix, b.current_key, namespace)

    def _refuse_access(self) -> Any:
        kg = self._backend.current_key_group
        if kg is None:
            raise errors.StateError(
                f"state {self._name!r} was accessed with no current key: keyed state exists "
                "only while a keyed function processes a record or timer (after key_by); "
                "outside the runtime, call backend.set_current_key(key) first"
            )
        raise errors.StateError(
            f"state {self._name!r}: the current key group {kg!r} is outside this backend's key "
            f"groups {self._backend.key_group_range.to_list()}: the record was routed to the "
            "wrong subtask, or current_key_group was not computed with this job's "
            "max_parallelism"
        )

    def _write(self, raw: bytes, value: bytes | None) -> None:
        pending = self._pending
        pending.writes[raw] = value
        if len(pending.writes) >= pending.limit:
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending.writes:
            batch = db_mod.new_batch()
            self._pending.write_back(batch)
            self._db.write(batch)

    def _scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        self._write_pending()
        return list(self._db.scan(self._pending.column, prefix, layout.prefix_end(prefix)))

    def _delete_all(self, prefix: bytes) -> None:
        self._write_pending()
        for raw in list(
            self._db.scan_keys(self._pending.column, prefix, layout.prefix_end(prefix))
        ):
            self._pending.writes[raw] = None

    def clear(self) -> None:
        self._delete_all(self._prefix(self._ns))


class RocksDBListState(CollectionState, api.ListState[Any]):
    """A list as one entry per element; with a TTL, each element expires alone."""

    __slots__ = ()

    def get(self) -> list[Any]:
        elements = self._scan(self._prefix(self._ns))
        deserialize = self._serializer.deserialize
        if not self._ttl:
            return [deserialize(value) for _, value in elements]
        now = self._clock.now_ms()
        stored: list[bytes] = []
        fresh: list[bytes] = []
        for raw, data in elements:
            ts, value = layout.unstamp(data)
            stored.append(value)
            if ts + self._ttl > now:
                fresh.append(value)
                if self._update_on_read:
                    self._write(raw, layout.stamp(now, value))
            else:
                self._write(raw, None)
        return [deserialize(value) for value in (stored if self._return_expired else fresh)]

    def add(self, value: Any) -> None:
        self.add_all([value])

    def add_all(self, values: Iterable[Any]) -> None:
        self._append(self._prefix(self._ns), self._encoded(values))

    def update(self, values: Iterable[Any]) -> None:
        encoded = self._encoded(values)
        prefix = self._prefix(self._ns)
        self._delete_all(prefix)
        self._append(prefix, encoded)

    def _encoded(self, values: Iterable[Any]) -> list[bytes]:
        new = list(values)
        if any(value is None for value in new):
            raise errors.StateError(f"ListState {self._name!r}: None cannot be added to a list")
        serialize = self._serializer.serialize
        if not self._ttl:
            return [serialize(value) for value in new]
        now = self._clock.now_ms()
        return [layout.stamp(now, serialize(value)) for value in new]

    def _append(self, prefix: bytes, encoded: list[bytes]) -> None:
        if not encoded:
            return
        first = self._next_sequence(len(encoded))
        for offset, data in enumerate(encoded):
            self._write(prefix + layout.sequence(first + offset), data)

    def merge_namespaces(self, target: api.Namespace, sources: Sequence[api.Namespace]) -> None:
        moved: list[bytes] = []
        for source in sources:
            prefix = self._prefix(source)
            for raw, value in self._scan(prefix):
                moved.append(value)
                self._write(raw, None)
        self._append(self._prefix(target), moved)


class RocksDBMapState(CollectionState, api.MapState[Any, Any]):
    """A map as one entry per user key; with a TTL, each entry expires alone."""

    __slots__ = ("_key_serializer",)

    def __init__(
        self,
        backend: backend_mod.KeyedStateBackend,
        common: Common,
        key_serializer: serializers.TypeSerializer,
    ) -> None:
        super().__init__(backend, common)
        self._key_serializer = key_serializer

    def _read_entry(self, key: Any) -> Any:
        raw = self._prefix(self._ns) + self._key_serializer.serialize(key)
        data = self._pending.read(raw)
        if data is None:
            return MISSING
        if not self._ttl:
            return self._serializer.deserialize(data)
        ts, value = layout.unstamp(data)
        now = self._clock.now_ms()
        if ts + self._ttl <= now:
            self._write(raw, None)
            return self._serializer.deserialize(value) if self._return_expired else MISSING
        if self._update_on_read:
            self._write(raw, layout.stamp(now, value))
        return self._serializer.deserialize(value)

    def _read_all(self) -> list[tuple[Any, Any]]:
        prefix = self._prefix(self._ns)
        start = len(prefix)
        user_key = self._key_serializer.deserialize
        deserialize = self._serializer.deserialize
        entries = self._scan(prefix)
        if not self._ttl:
            return [(user_key(raw[start:]), deserialize(data)) for raw, data in entries]
        now = self._clock.now_ms()
        visible: list[tuple[Any, Any]] = []
        for raw, data in entries:
            ts, value = layout.unstamp(data)
            if ts + self._ttl <= now:
                self._write(raw, None)
                if not self._return_expired:
                    continue
            elif self._update_on_read:
                self._write(raw, layout.stamp(now, value))
            visible.append((user_key(raw[start:]), deserialize(value)))
        return visible

    def get(self, key: Any) -> Any:
        value = self._read_entry(key)
        return None if value is MISSING else value

    def put(self, key: Any, value: Any) -> None:
        self.put_all({key: value})

    def put_all(self, entries: Mapping[Any, Any]) -> None:
        if not entries:
            return
        prefix = self._prefix(self._ns)
        serialize = self._serializer.serialize
        key_bytes = self._key_serializer.serialize
        now = self._clock.now_ms() if self._ttl else 0
        for key, value in entries.items():
            data = serialize(value)
            self._write(prefix + key_bytes(key), layout.stamp(now, data) if self._ttl else data)

    def remove(self, key: Any) -> None:
        self._write(self._prefix(self._ns) + self._key_serializer.serialize(key), None)

    def contains(self, key: Any) -> bool:
        return self._read_entry(key) is not MISSING

    def keys(self) -> list[Any]:
        return [key for key, _ in self._read_all()]

    def values(self) -> list[Any]:
        return [value for _, value in self._read_all()]

    def items(self) -> list[tuple[Any, Any]]:
        return self._read_all()

    def is_empty(self) -> bool:
        if self._ttl:
            return not self._read_all()
        prefix = self._prefix(self._ns)
        self._write_pending()
        return not self._db.any_in(self._pending.column, prefix, layout.prefix_end(prefix))
