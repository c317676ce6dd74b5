"""``HashMapStateBackend``: keyed state in Python dicts, partitioned by key group.

Fast (a value read plus write is two dict operations) and bounded by memory. Each registered
state has a :class:`~streamjob.state.hashmap_table.StateTable`; its state object comes from
:mod:`streamjob.state.hashmap_states` (no TTL) or :mod:`streamjob.state.hashmap_ttl`.
Snapshots are canonical (:mod:`streamjob.state.canonical`, via
:mod:`streamjob.state.hashmap_snapshot`), per key group. Values are mutable Python objects and a
thread would hold the GIL anyway, so a key group is serialized on the task's loop; a checkpoint
does it copy-on-write, key group by key group, after the barrier went on:

1. ``begin_copy_on_write(kgs, touch)`` at the barrier guards every state's dicts of those key
   groups (:mod:`streamjob.state.hashmap_guard`; O(key groups));
2. records go on: a guarded key group keeps each entry's barrier value before the entry
   changes (per entry, cheap for immutable values); a change it cannot keep that way (a
   mutable value handed out) calls ``touch(kg)``: the caller captures that key group there
   (``capture_key_group``: copies of states whose values are all atomic, the other states
   serialized; :mod:`streamjob.state.hashmap_capture`) and calls ``release_key_group(kg)``;
   it serializes the captures and the other key groups between batches
   (``snapshot_key_group_parts``: guarded key groups as of the barrier), releasing each;
3. ``end_copy_on_write()`` drops the guards left (a finished or abandoned snapshot).

A state registered while key groups are guarded is guarded too (it is empty there at the
barrier). Expired TTL entries are left out as of the barrier's time.

Restore:

1. ``restore_key_group(kg, blob)`` for each owned key group, before any record is processed
   (``blob`` may be a ``memoryview`` of a larger read: sections are decoded without copies).
2. A section of a registered state is loaded at once (its kind and serializers are checked).
3. A section of a state not registered yet is kept as raw bytes, with its meta info: it is
   loaded when the job registers the state (``get_state``), and written back unchanged by
   snapshots if it never does, so state survives a run that does not touch it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from streamjob import clock as clock_mod
from streamjob import errors, keygroups
from streamjob.state import (
    api,
    backend,
    canonical,
    canonical_columns,
    descriptors,
    hashmap_capture,
    hashmap_snapshot,
    hashmap_states,
    hashmap_table,
    hashmap_ttl,
    meta,
)


class HashMapStateBackend(backend.KeyedStateBackend):
    """Keyed state of one subtask in dicts; see the module docstring."""

    __slots__ = (
        "_clock",
        "_disposed",
        "_guarded",
        "_on_touch",
        "_pending",
        "_pending_meta",
        "_snapshot_now",
        "_states",
        "_tables",
    )

    def __init__(
        self,
        *,
        max_parallelism: int,
        key_group_range: keygroups.KeyGroupRange,
        clock: clock_mod.Clock = clock_mod.SYSTEM_CLOCK,
    ) -> None:
        super().__init__(max_parallelism=max_parallelism, key_group_range=key_group_range)
        self._clock = clock
        self._tables: dict[str, hashmap_table.StateTable] = {}
        self._states: dict[str, api.State] = {}
        self._pending: dict[str, dict[int, bytes]] = {}
        self._pending_meta: dict[str, meta.StateMetaInfo] = {}
        self._disposed = False
        self._guarded: set[int] = set()
        self._on_touch: Callable[[int], None] | None = None
        self._snapshot_now: int | None = None

    # -- states -------------------------------------------------------------------------------

    def _get_state(self, descriptor: descriptors.StateDescriptor) -> api.State:
        self._check_usable()
        if not isinstance(descriptor, descriptors.StateDescriptor):
            raise TypeError(
                f"get_state takes a state descriptor (ValueStateDescriptor, ...), got "
                f"{descriptor!r}"
            )
        existing = self._tables.get(descriptor.name)
        if existing is not None:
            if existing.info != descriptor.meta_info():
                raise errors.StateError(
                    f"state {descriptor.name!r} is already registered as {existing.descriptor!r} "
                    f"({_describe(existing.info)}); it cannot be registered again as "
                    f"{descriptor!r} ({_describe(descriptor.meta_info())}). Use one descriptor "
                    "per state name"
                )
            return self._states[descriptor.name]
        info = descriptor.meta_info()
        restored = self._pending_meta.get(descriptor.name)
        if restored is not None:
            problem = meta.incompatibility_error_text(info, restored)
            if problem is not None:
                raise errors.StateError(problem)
        table = hashmap_table.StateTable(
            descriptor, max_parallelism=self.max_parallelism, key_group_range=self.key_group_range
        )
        state: api.State
        if descriptor.ttl_config is None:
            state = hashmap_states.create(self, table)
        else:
            state = hashmap_ttl.create(self, table, self._clock)
        now = self._clock.now_ms()
        pending = self._pending.pop(descriptor.name, {})
        if pending:
            with hashmap_snapshot.Loader(table) as loader:
                while pending:
                    kg, body = pending.popitem()  # frees each body once it is loaded
                    loader.load(kg, body, now)
        self._pending_meta.pop(descriptor.name, None)
        if self._on_touch is not None:
            for kg in self._guarded:  # empty there at the barrier: its entries are all new
                table.guard(kg, self._on_touch)
        self._tables[descriptor.name] = table
        self._states[descriptor.name] = state
        return state

    def _table(self, state_name: str) -> hashmap_table.StateTable:
        self._check_usable()
        table = self._tables.get(state_name)
        if table is None:
            raise errors.StateError(
                f"no state named {state_name!r} is registered (registered: "
                f"{sorted(self._tables)}); call get_state(descriptor) first"
            )
        return table

    def get_keys(self, state_name: str, namespace: api.Namespace) -> Iterator[Any]:
        table = self._table(state_name)
        return iter([key for _, key in table.keys_with_groups(namespace)])

    def _keys_with_groups(self, state_name: str, namespace: Any) -> Iterable[tuple[int, Any]]:
        return self._tables[state_name].keys_with_groups(namespace)

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot_key_group(self, key_group: int) -> bytes:
        return b"".join(self.snapshot_key_group_parts(key_group))

    def snapshot_key_group_parts(self, key_group: int) -> list[canonical_columns.Part]:
        """:meth:`snapshot_key_group` as the blob's parts, so that whoever writes it copies it
        once (the upload joins a whole file's parts in its thread)."""
        self._check_usable()
        self.check_key_group(key_group)
        now = self._clock.now_ms() if self._snapshot_now is None else self._snapshot_now
        sections: list[tuple[str, bytes | list[canonical_columns.Part]]] = []
        for name, table in self._tables.items():
            body = hashmap_snapshot.write_section(table, key_group, now)
            if body is not None:
                sections.append((canonical.state_section_name(name), body))
        for name, bodies in self._pending.items():
            if key_group in bodies:
                sections.append((canonical.state_section_name(name), bodies[key_group]))
        return canonical.key_group_parts(key_group, sections)

    # -- copy-on-write snapshots (see the module docstring) -----------------------------------

    def capture_key_group(self, key_group: int) -> hashmap_capture.CapturedKeyGroup:
        """``key_group`` as it is now, cheaply: ``.parts()`` later gives the blob that
        :meth:`snapshot_key_group_parts` gives now."""
        self._check_usable()
        self.check_key_group(key_group)
        now = self._clock.now_ms() if self._snapshot_now is None else self._snapshot_now
        return hashmap_capture.capture_key_group(self._tables, self._pending, key_group, now)

    def begin_copy_on_write(self, key_groups: Iterable[int], touch: Callable[[int], None]) -> None:
        """Guard ``key_groups`` of every state (see the module docstring): what the guards
        cannot keep entry by entry calls ``touch(kg)`` first."""
        self._check_usable()
        if self._on_touch is not None:
            raise errors.StateError(
                "a copy-on-write snapshot is already in progress on this backend: finish it "
                "(end_copy_on_write) before the next one begins"
            )
        self._guarded = set(key_groups)
        self._on_touch = touch
        self._snapshot_now = self._clock.now_ms()
        for kg in self._guarded:
            self.check_key_group(kg)
            for table in self._tables.values():
                table.guard(kg, touch)

    def release_key_group(self, key_group: int) -> int:
        """Drop the guard of ``key_group`` (it was serialized); a no-op if it has none. The
        number of entries the guard had copied on write."""
        if key_group not in self._guarded:
            return 0
        self._guarded.discard(key_group)
        return sum(table.release(key_group) for table in self._tables.values())

    def end_copy_on_write(self) -> None:
        """Drop every guard left; the next snapshot may begin."""
        for kg in list(self._guarded):
            self.release_key_group(kg)
        self._on_touch = None
        self._snapshot_now = None

    # -- restore ------------------------------------------------------------------------------

    def restore_key_group(self, key_group: int, data: bytes | memoryview) -> None:
        self._check_usable()
        self.check_key_group(key_group)
        blob_key_group, sections = canonical.split_key_group(data)
        if blob_key_group != key_group:
            raise errors.StateError(
                f"the blob restored as key group {key_group} holds key group {blob_key_group}: "
                "the checkpoint's key-group offsets do not match its data"
            )
        now = self._clock.now_ms()
        for section_name, body in sections:
            if not section_name.startswith(canonical.STATE_SECTION_PREFIX):
                continue  # another layer's section (timers): not the backend's
            restored = canonical.read_state_meta(body)
            table = self._tables.get(restored.name)
            if table is None:
                self._keep_pending(key_group, restored, body)
                continue
            problem = meta.incompatibility_error_text(table.info, restored)
            if problem is not None:
                raise errors.StateError(problem)
            hashmap_snapshot.read_section(table, key_group, body, now)

    def _keep_pending(
        self, key_group: int, restored: meta.StateMetaInfo, body: bytes | memoryview
    ) -> None:
        known = self._pending_meta.setdefault(restored.name, restored)
        problem = meta.incompatibility_error_text(known, restored)
        if problem is not None:
            raise errors.StateError(f"the checkpoint is inconsistent: {problem}")
        # a copy: a view would keep the whole read alive for a state that may never load
        self._pending.setdefault(restored.name, {})[key_group] = bytes(body)

    def state_metadata(self) -> list[meta.StateMetaInfo]:
        infos = [table.info for table in self._tables.values()]
        infos.extend(self._pending_meta.values())
        return infos

    def check_compatible(self, restored: Sequence[meta.StateMetaInfo]) -> None:
        problems = []
        for info in restored:
            table = self._tables.get(info.name)
            if table is not None:
                problem = meta.incompatibility_error_text(table.info, info)
                if problem is not None:
                    problems.append(problem)
        if problems:
            raise errors.StateError("; ".join(problems))

    # -- metrics and lifecycle ----------------------------------------------------------------

    def num_keys(self) -> int:
        return sum(table.count() for table in self._tables.values())

    def approx_size_bytes(self) -> int:
        raw = sum(len(body) for bodies in self._pending.values() for body in bodies.values())
        return raw + sum(table.approx_size_bytes() for table in self._tables.values())

    def dispose(self) -> None:
        self.end_copy_on_write()
        for table in self._tables.values():
            table.clear()
        self._tables.clear()
        self._states.clear()
        self._pending.clear()
        self._pending_meta.clear()
        self._disposed = True

    def _check_usable(self) -> None:
        if self._disposed:
            raise errors.StateError("this state backend was disposed; it holds no state")


def _describe(info: meta.StateMetaInfo) -> str:
    parts = [f"kind {info.kind.value}", f"serializer {info.value_serializer}"]
    if info.key_serializer is not None:
        parts.append(f"key serializer {info.key_serializer}")
    parts.append("no TTL" if info.ttl is None else f"TTL {info.ttl.to_dict()}")
    return ", ".join(parts)
