"""``RocksDBStateBackend``: keyed state in an embedded RocksDB, one column family per state.

State larger than memory lives in RocksDB (:mod:`streamjob.state.rocksdb.db`) under the key
layout of :mod:`streamjob.state.rocksdb.layout`; a bounded write-back cache in front of it
(:mod:`streamjob.state.rocksdb.cache`) keeps the per-record cost near the hashmap backend's for
hot keys. :mod:`streamjob.state.rocksdb.states` builds the state objects: single-value states use
the hashmap backend's state classes on that cache (same TTL rules), lists and maps have their
own (:mod:`streamjob.state.rocksdb.collections`). Each backend
works in its own temporary directory, removed on :meth:`dispose` (or when the backend is
garbage collected, or at exit).

Snapshots come in two formats:

* canonical (:mod:`streamjob.state.rocksdb.snapshot`): ``snapshot_key_group`` /
  ``restore_key_group``, for savepoints and backend changes, as every backend;
* native (:mod:`streamjob.state.rocksdb.native`): ``native_checkpoint`` writes the cache back
  and takes a RocksDB checkpoint, ``restore_native`` rebuilds the database from the downloaded
  checkpoints of the old subtasks. The checkpoint layer uploads their files incrementally.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from streamjob import clock as clock_mod
from streamjob import errors, keycodec, keygroups
from streamjob.state import api, backend, canonical, descriptors, meta
from streamjob.state.rocksdb import cache, catalog, layout, native, snapshot, states
from streamjob.state.rocksdb import db as db_mod
from streamjob.state.rocksdb import options as options_mod

log = logging.getLogger(__name__)

CACHED_ENTRY_BYTES = 128
"""What a cached entry is taken to weigh in ``approx_size_bytes`` (a key and a small value)."""


class _Resources:
    """What must be released when the backend goes: the database and the working directory."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.database: db_mod.StateDB | None = None

    def release(self) -> None:
        database, self.database = self.database, None
        try:
            if database is not None:
                database.close()
        except Exception as exc:  # the directory may be gone already (at exit, in tests)
            log.debug("closing the RocksDB database in %s: %s", self.workdir, exc)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


class RocksDBStateBackend(backend.KeyedStateBackend):
    """Keyed state of one subtask in RocksDB; see the module docstring."""

    __slots__ = (
        "__weakref__",
        "_clock",
        "_db",
        "_descriptors",
        "_disposed",
        "_finalizer",
        "_next_sequence",
        "_prefixes",
        "_resources",
        "_saved_sequence",
        "_settings",
        "_states",
        "_stored",
        "_stores",
        "_width",
        "_without_state",
    )

    def __init__(
        self,
        *,
        max_parallelism: int,
        key_group_range: keygroups.KeyGroupRange,
        clock: clock_mod.Clock = clock_mod.SYSTEM_CLOCK,
        options: options_mod.RocksDBOptions | None = None,
        directory: str | None = None,
    ) -> None:
        super().__init__(max_parallelism=max_parallelism, key_group_range=key_group_range)
        self._clock = clock
        self._settings = options or options_mod.RocksDBOptions()
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="streamjob-rocksdb-", dir=directory)
        self._resources = _Resources(workdir)
        self._finalizer = weakref.finalize(self, self._resources.release)
        self._width = layout.key_group_width(max_parallelism)
        self._prefixes = {kg: layout.key_group_prefix(kg, self._width) for kg in key_group_range}
        self._descriptors: dict[str, descriptors.StateDescriptor] = {}
        self._states: dict[str, api.State] = {}
        self._stores: dict[str, states.Store] = {}
        self._disposed = False
        self._without_state = False
        self._open(os.path.join(workdir, "db"))

    def _open(self, path: str) -> None:
        self._db = db_mod.StateDB(path, self._settings)
        self._resources.database = self._db
        self._stored, self._next_sequence = catalog.load(self._db)
        self._saved_sequence = self._next_sequence

    @property
    def workdir(self) -> str:
        return self._resources.workdir

    # -- states -------------------------------------------------------------------------------

    def _get_state(self, descriptor: descriptors.StateDescriptor) -> api.State:
        self._check_usable()
        if not isinstance(descriptor, descriptors.StateDescriptor):
            raise TypeError(
                f"get_state takes a state descriptor (ValueStateDescriptor, ...), got "
                f"{descriptor!r}"
            )
        name = descriptor.name
        info = descriptor.meta_info()
        existing = self._descriptors.get(name)
        if existing is not None:
            if existing.meta_info() != info:
                raise errors.StateError(
                    f"state {name!r} is already registered as {existing!r} "
                    f"({describe(existing.meta_info())}); it cannot be registered again as "
                    f"{descriptor!r} ({describe(info)}). Use one descriptor per state name"
                )
            return self._states[name]
        stored = self._stored.get(name)
        if stored is not None:
            problem = meta.incompatibility_error_text(info, stored)
            if problem is not None:
                raise errors.StateError(problem)
        column = self._db.column(catalog.column_name(name))
        if stored is not None and (stored.ttl is None) != (info.ttl is None):
            self._migrate_ttl(column, add=info.ttl is not None)
        batch = db_mod.new_batch()
        catalog.put_meta(batch, self._db, info)
        self._db.write(batch)
        self._stored[name] = info
        state = self._create_state(descriptor, column)
        self._descriptors[name] = descriptor
        self._states[name] = state
        return state

    def _create_state(
        self, descriptor: descriptors.StateDescriptor, column: db_mod.Column
    ) -> api.State:
        state, store = states.create(
            self,
            descriptor,
            column=column,
            database=self._db,
            prefixes=self._prefixes,
            limit=self._settings.cache_entries,
            clock=self._clock,
            next_sequence=self._take_sequence,
        )
        if isinstance(store, cache.SingleValueStore):
            store.on_full = lambda: self._make_room(store)
        self._stores[descriptor.name] = store
        return state

    def _make_room(self, store: cache.SingleValueStore) -> None:
        self.flush()
        store.evict()

    def _take_sequence(self, count: int) -> int:
        first = self._next_sequence
        self._next_sequence += count
        return first

    def _migrate_ttl(self, column: db_mod.Column, *, add: bool) -> None:
        """Add (restore time) or drop the TTL timestamps of every value of a column family."""
        now = self._clock.now_ms()
        batch = db_mod.new_batch()
        lower, upper = self._bounds(self.key_group_range)
        for raw, data in self._db.scan(column, lower, upper):
            batch.put(column, raw, layout.stamp(now, data) if add else layout.unstamp(data)[1])
        self._db.write(batch)

    def _bounds(self, kg_range: keygroups.KeyGroupRange) -> tuple[bytes, bytes]:
        return (
            layout.key_group_prefix(kg_range.start, self._width),
            layout.key_group_prefix(kg_range.end + 1, self._width),
        )

    def flush(self) -> None:
        """Write every cached change and pending write to RocksDB as one WriteBatch."""
        self._check_usable()
        batch = db_mod.new_batch()
        for store in self._stores.values():
            store.write_back(batch)
        if self._next_sequence != self._saved_sequence:
            catalog.put_sequence(batch, self._db, self._next_sequence)
            self._saved_sequence = self._next_sequence
        self._db.write(batch)

    def _evict(self) -> None:
        for store in self._stores.values():
            if isinstance(store, cache.SingleValueStore):
                store.evict()

    # -- keys ---------------------------------------------------------------------------------

    def _registered(self, state_name: str) -> meta.StateMetaInfo:
        self._check_usable()
        if state_name not in self._descriptors:
            raise errors.StateError(
                f"no state named {state_name!r} is registered (registered: "
                f"{sorted(self._descriptors)}); call get_state(descriptor) first"
            )
        return self._stored[state_name]

    def _keys_with_groups(self, state_name: str, namespace: Any) -> list[tuple[int, Any]]:
        self._registered(state_name)
        self.flush()
        column = self._db.columns[catalog.column_name(state_name)]
        wanted = canonical.encode_namespace(namespace)
        width = self._width
        found: list[tuple[int, Any]] = []
        last = b""
        lower, upper = self._bounds(self.key_group_range)
        for raw in self._db.scan_keys(column, lower, upper):
            key_end, ns_end = layout.split(raw, width)
            if raw[key_end:ns_end] != wanted or raw[:ns_end] == last:
                continue
            last = raw[:ns_end]
            found.append((layout.key_group_of(raw, width), keycodec.decode_key(raw[width:key_end])))
        return found

    def get_keys(self, state_name: str, namespace: api.Namespace) -> Iterator[Any]:
        return iter([key for _, key in self._keys_with_groups(state_name, namespace)])

    # -- canonical snapshots ------------------------------------------------------------------

    def snapshot_key_group(self, key_group: int) -> bytes:
        self._check_usable()
        self.check_key_group(key_group)
        if self._without_state:
            return canonical.build_key_group(key_group, [])
        self.flush()
        now = self._clock.now_ms()
        lower, upper = self._bounds(keygroups.KeyGroupRange(key_group, key_group))
        sections: list[tuple[str, bytes]] = []
        for name, info in sorted(self._stored.items()):
            body = snapshot.write_section(
                self._db,
                self._db.column(catalog.column_name(name)),
                info,
                lower=lower,
                upper=upper,
                width=self._width,
                now_ms=now,
            )
            if body is not None:
                sections.append((canonical.state_section_name(name), body))
        return canonical.build_key_group(key_group, sections)

    def restore_key_group(self, key_group: int, data: bytes) -> None:
        self._check_usable()
        self.check_key_group(key_group)
        blob_key_group, sections = canonical.read_key_group(data)
        if blob_key_group != key_group:
            raise errors.StateError(
                f"the blob restored as key group {key_group} holds key group {blob_key_group}: "
                "the checkpoint's key-group offsets do not match its data"
            )
        state_sections = [
            (name, body)
            for name, body in sections
            if name.startswith(canonical.STATE_SECTION_PREFIX)
        ]
        if not state_sections:
            return
        self.flush()
        self._evict()
        now = self._clock.now_ms()
        lower, upper = self._bounds(keygroups.KeyGroupRange(key_group, key_group))
        batch = db_mod.new_batch()
        for _, body in state_sections:
            restored = canonical.read_state_meta(body)
            stored_as = self._stored.get(restored.name)
            if stored_as is not None:
                problem = meta.incompatibility_error_text(stored_as, restored)
                if problem is not None:
                    if restored.name not in self._descriptors:
                        problem = f"the checkpoint is inconsistent: {problem}"
                    raise errors.StateError(problem)
            else:
                stored_as = restored
                catalog.put_meta(batch, self._db, restored)
                self._stored[restored.name] = restored
            column = self._db.column(catalog.column_name(restored.name))
            replace = None
            if stored_as.kind in (meta.StateKind.LIST, meta.StateKind.MAP) and self._db.any_in(
                column, lower, upper
            ):
                replace = _range_deleter(batch, column)
            snapshot.read_section(
                body,
                batch=batch,
                column=column,
                stored_as=stored_as,
                kg_prefix=self._prefixes[key_group],
                now_ms=now,
                next_sequence=self._take_sequence,
                before_entry=replace,
            )
        self._db.write(batch)

    def state_metadata(self) -> list[meta.StateMetaInfo]:
        return list(self._stored.values())

    def check_compatible(self, restored: Sequence[meta.StateMetaInfo]) -> None:
        problems = []
        for info in restored:
            descriptor = self._descriptors.get(info.name)
            if descriptor is not None:
                problem = meta.incompatibility_error_text(descriptor.meta_info(), info)
                if problem is not None:
                    problems.append(problem)
        if problems:
            raise errors.StateError("; ".join(problems))

    # -- native snapshots (for the checkpoint layer) ------------------------------------------

    native_format = native.FORMAT

    def native_checkpoint(self, checkpoint_id: int) -> native.NativeCheckpoint:
        """Write the cache back and take a RocksDB checkpoint into a new local directory."""
        self.flush()
        directory = os.path.join(self.workdir, f"chk-{checkpoint_id}")
        return native.take(self._db, directory, self.key_group_range)

    @contextlib.contextmanager
    def without_state_in_blobs(self) -> Iterator[None]:
        """Within this block ``snapshot_key_group`` leaves the state out (it travels in a native
        checkpoint), so operators' ``snapshot_keyed_sections`` give only their own sections."""
        self._without_state = True
        try:
            yield
        finally:
            self._without_state = False

    def restore_directory(self, index: int) -> str:
        """An empty local directory to download old subtask ``index``'s native files into."""
        path = os.path.join(self.workdir, f"restore-{index}")
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    def restore_native(self, downloads: Sequence[tuple[str, keygroups.KeyGroupRange]]) -> int:
        """Rebuild the database from native checkpoints of old subtasks, downloaded into
        ``(directory, key-group range)`` each (module docstring of
        :mod:`streamjob.state.rocksdb.native`); returns the index of the one adopted whole."""
        self._check_usable()
        sources = [native.NativeSource(directory, kg_range) for directory, kg_range in downloads]
        if self._descriptors:
            raise errors.StateError(
                "restore_native must run before any state is registered (before the operator "
                f"opens); registered: {sorted(self._descriptors)}"
            )
        if not sources:
            return -1
        base = native.choose_base(sources, self.key_group_range)
        path = self._db.path
        self._db.close()
        shutil.rmtree(path)
        os.rename(sources[base].directory, path)
        self._open(path)
        sequence = native.merge(
            self._db,
            sources,
            base=base,
            own=self.key_group_range,
            max_parallelism=self.max_parallelism,
            settings=self._settings,
            scratch=self.workdir,
        )
        self._stored, _ = catalog.load(self._db)
        self._next_sequence = max(self._next_sequence, sequence)
        self._saved_sequence = -1
        self.flush()
        return base

    # -- metrics and lifecycle ----------------------------------------------------------------

    def num_keys(self) -> int:
        if self._disposed:
            return 0
        self.flush()
        count = 0
        lower, upper = self._bounds(self.key_group_range)
        for name in self._stored:
            column = self._db.column(catalog.column_name(name))
            last = b""
            for raw in self._db.scan_keys(column, lower, upper):
                _, ns_end = layout.split(raw, self._width)
                if raw[:ns_end] != last:
                    last = raw[:ns_end]
                    count += 1
        return count

    def approx_size_bytes(self) -> int:
        """RocksDB's own estimates (live SST data and memtables) plus the cached changes.

        Safe from another thread (the TaskManager's heartbeat reports it): it only reads
        RocksDB properties and counters, never the cache's contents."""
        if self._disposed:
            return 0
        cached = 0
        for store in list(self._stores.values()):
            count = store.count if isinstance(store, cache.SingleValueStore) else len(store.writes)
            cached += count * CACHED_ENTRY_BYTES
        try:
            return self._db.size_estimate() + cached
        except Exception:  # closed meanwhile (disposed by the task's thread)
            return cached

    def dispose(self) -> None:
        self._finalizer()
        self._descriptors.clear()
        self._states.clear()
        self._stores.clear()
        self._stored.clear()
        self._disposed = True

    def _check_usable(self) -> None:
        if self._disposed:
            raise errors.StateError("this state backend was disposed; it holds no state")


def _range_deleter(batch: db_mod.Batch, column: db_mod.Column) -> Callable[[bytes], None]:
    def delete(prefix: bytes) -> None:
        batch.delete_range(column, prefix, layout.prefix_end(prefix))

    return delete


def describe(info: meta.StateMetaInfo) -> str:
    parts = [f"kind {info.kind.value}", f"serializer {info.value_serializer}"]
    if info.key_serializer is not None:
        parts.append(f"key serializer {info.key_serializer}")
    parts.append("no TTL" if info.ttl is None else f"TTL {info.ttl.to_dict()}")
    return ", ".join(parts)
