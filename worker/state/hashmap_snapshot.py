"""Converting the hashmap backend's stored values to canonical sections and back.

:func:`write_section` turns one :class:`StateTable`'s key group into a canonical state section
body, column by column (:mod:`streamjob.state.canonical_columns`); :func:`read_section` loads
a body of either layout into a table. Both work on whole columns (one ``join`` of the keys, one
pickle of the values, one ``dict.update``) rather than entry by entry: per-entry Python steps
are what a snapshot of millions of keys costs. Stored shapes (see
:mod:`streamjob.state.hashmap_states` and :mod:`streamjob.state.hashmap_ttl`):

=================  ================  ==========================
kind               without TTL       with TTL
=================  ================  ==========================
value, reducing    ``v``             ``(v, ts)``
aggregating        ``acc``           ``(acc, ts)``
list               ``[v, ...]``      ``[(v, ts), ...]``
map                ``{uk: v}``       ``{uk: (v, ts)}``
=================  ================  ==========================

A restore may change the TTL setting: timestamps are dropped when the state no longer has a
TTL, and entries written without one are stamped with the restore time.

Garbage collection during a restore (:class:`Loader`): a restore creates millions of objects
that all stay alive. When they are containers the collector tracks (lists, dicts, objects),
the automatic collections they trigger include full ones, each traversing the whole growing
heap: so once the first loaded values of a state turn out to be tracked, automatic
collections are paused while its other key groups load, and after each section only the
young generations are collected (the section's new objects, while they are fresh). Values the
collector stops tracking at once (numbers, strings, tuples of those) cost it little, and
pausing it for them measured slower. Measured, load plus the collections it leaves behind:
1 M lists and dicts, 1.2 s paused instead of 1.9-2.8 s; 1 GB of tuples (5 M per subtask),
3.3-3.5 s per subtask not paused, 3.5-4.4 s paused. The loaded objects are not frozen
(``gc.freeze``, which would make later full collections skip them; measured to speed up the
work after a restore of lists and dicts): that would also put the garbage cycles alive then,
and every cycle that becomes garbage later (a failed-over attempt's tasks, with their state),
out of the collector's reach for good.
"""

from __future__ import annotations

import gc
from itertools import accumulate, chain, islice, pairwise
from typing import Any

from streamjob.state import canonical, canonical_columns, hashmap_table, meta, serializers

_ONE_ITEM_KINDS = (meta.StateKind.VALUE, meta.StateKind.REDUCING, meta.StateKind.AGGREGATING)


def item_column(
    serializer: serializers.TypeSerializer, objs: list[Any]
) -> list[canonical_columns.Part]:
    """A canonical item column of ``objs``: one pickle of them all when the serializer is
    pickle (a C loop instead of a Python call per object), else each object's bytes."""
    if type(serializer) is serializers.PickleSerializer:
        return canonical_columns.pickled_items(objs, serializer.protocol)
    return canonical_columns.chunk_items(serializers.serialize_all(serializer, objs))


def item_objects(serializer: serializers.TypeSerializer, items: canonical.Items) -> list[Any]:
    if items.objects is not None:
        return items.objects
    assert items.chunks is not None
    return serializers.deserialize_all(serializer, items.chunks)


# -- snapshot -------------------------------------------------------------------------------------
def write_section(
    table: hashmap_table.StateTable, key_group: int, now_ms: int
) -> list[canonical_columns.Part] | None:
    """The section body of ``key_group`` (as its parts, for
    :func:`canonical.build_key_group`), or ``None`` when the state has nothing there."""
    void, spaced = table.as_of_snapshot(key_group)  # as a pending snapshot must see them
    return write_entries(table, void, spaced, now_ms)


def write_entries(
    table: hashmap_table.StateTable,
    void: dict[Any, Any],
    spaced: dict[Any, Any],
    now_ms: int,
) -> list[canonical_columns.Part] | None:
    """:func:`write_section` of one key group's dicts given apart from the table (its void
    and namespaced entries, e.g. copies taken earlier)."""
    if not void and not spaced:
        return None
    keys = list(void)
    stored = list(void.values())
    namespaces: list[bytes] | None = None
    if spaced:
        namespaces = [canonical.VOID_NAMESPACE] * len(keys)
        encoded: dict[Any, bytes] = {}  # windows: many keys share one namespace
        for key, namespace in spaced:
            keys.append(key)
            chunk = encoded.get(namespace)
            if chunk is None:
                chunk = encoded[namespace] = canonical.encode_namespace(namespace)
            namespaces.append(chunk)
        stored.extend(spaced.values())
    info = table.info
    ttl = info.ttl
    drop_before = now_ms - ttl.ttl_ms if ttl is not None and ttl.cleanup_in_full_snapshot else None
    if info.kind in _ONE_ITEM_KINDS:
        return _write_one_item_entries(table, keys, namespaces, stored, drop_before)
    return _write_collections(table, keys, namespaces, stored, drop_before)


def _write_one_item_entries(
    table: hashmap_table.StateTable,
    keys: list[Any],
    namespaces: list[bytes] | None,
    stored: list[Any],
    drop_before: int | None,
) -> list[canonical_columns.Part] | None:
    timestamps = None
    values = stored
    if table.info.ttl is not None:
        if drop_before is not None:
            kept = [i for i, (_, ts) in enumerate(stored) if ts > drop_before]
            if len(kept) < len(stored):
                keys = [keys[i] for i in kept]
                namespaces = None if namespaces is None else [namespaces[i] for i in kept]
                stored = [stored[i] for i in kept]
        values = [value for value, _ in stored]
        timestamps = [ts for _, ts in stored]
    if not keys:
        return None
    return canonical_columns.body_parts(
        table.meta_head,
        keys=keys,
        namespaces=namespaces,
        counts=None,
        user_keys=None,
        timestamps=timestamps,
        values=item_column(table.descriptor.serializer, values),
        n_items=len(values),
    )


def _write_collections(
    table: hashmap_table.StateTable,
    keys: list[Any],
    namespaces: list[bytes] | None,
    stored: list[Any],
    drop_before: int | None,
) -> list[canonical_columns.Part] | None:
    """ListState (elements) and MapState (user entries): several items per entry."""
    is_map = table.info.kind is meta.StateKind.MAP
    with_ttl = table.info.ttl is not None
    kept_keys: list[Any] = []
    kept_namespaces: list[bytes] = []
    counts: list[int] = []
    user_keys: list[Any] = []
    values: list[Any] = []
    timestamps: list[int] = []
    for index, collection in enumerate(stored):
        items = list(collection.items()) if is_map else collection
        if with_ttl:
            if is_map:
                items = [(uk, value, ts) for uk, (value, ts) in items]
            if drop_before is not None:
                items = [item for item in items if item[-1] > drop_before]
            timestamps.extend([item[-1] for item in items])
        if not items:
            continue
        if is_map:
            user_keys.extend([item[0] for item in items])
            values.extend([item[1] for item in items])
        elif with_ttl:
            values.extend([item[0] for item in items])
        else:
            values.extend(items)
        kept_keys.append(keys[index])
        if namespaces is not None:
            kept_namespaces.append(namespaces[index])
        counts.append(len(items))
    if not kept_keys:
        return None
    descriptor = table.descriptor
    key_serializer = descriptor.key_serializer
    if is_map:
        assert key_serializer is not None
    return canonical_columns.body_parts(
        table.meta_head,
        keys=kept_keys,
        namespaces=None if namespaces is None else kept_namespaces,
        counts=counts,
        user_keys=item_column(key_serializer, user_keys) if key_serializer and is_map else None,
        timestamps=timestamps if with_ttl else None,
        values=item_column(descriptor.serializer, values),
        n_items=len(values),
    )


# -- restore --------------------------------------------------------------------------------------
class Loader:
    """Loads the restored sections of one state (see the module docstring on garbage
    collection); a context manager: ``with Loader(table) as loader: loader.load(...)``."""

    SAMPLE = 32

    def __init__(self, table: hashmap_table.StateTable) -> None:
        self.table = table
        self.paused = False
        self._decided = not gc.isenabled()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.paused:
            self.paused = False
            gc.enable()

    def load(self, key_group: int, body: bytes | memoryview, now_ms: int) -> None:
        read_section(self.table, key_group, body, now_ms)
        if self.paused:
            gc.collect(1)  # this section's new objects, while they are fresh
        elif not self._decided:
            void, spaced = self.table.live(key_group)
            sample = list(islice(chain(void.values(), spaced.values()), self.SAMPLE))
            if sample:
                self._decided = True
                gc.collect(0)  # the collector stops tracking tuples of atoms when it sees them
                if any(map(gc.is_tracked, sample)):  # containers the collector keeps visiting
                    gc.disable()
                    self.paused = True


def read_section(
    table: hashmap_table.StateTable, key_group: int, body: bytes | memoryview, now_ms: int
) -> None:
    """Load a canonical section body into ``table`` (entries replace existing ones)."""
    _, columns = canonical.read_columns(body)
    descriptor = table.descriptor
    stored = item_objects(descriptor.serializer, columns.values)
    if table.info.ttl is not None:
        stamps = columns.timestamps or [now_ms] * len(stored)
        stored = list(zip(stored, stamps, strict=True))
    keys = columns.keys
    namespaces = columns.namespaces
    if table.info.kind not in _ONE_ITEM_KINDS:
        stored = _collections(table, columns, stored)
        if not all(stored):  # an empty list or map is no state
            kept = [i for i, collection in enumerate(stored) if collection]
            keys = [keys[i] for i in kept]
            namespaces = None if namespaces is None else [namespaces[i] for i in kept]
            stored = [stored[i] for i in kept]
    if namespaces is None:
        table.tables[key_group].update(zip(keys, stored, strict=True))
        return
    for key, namespace, value in zip(keys, namespaces, stored, strict=True):
        table.put(key_group, key, namespace, value)


def _collections(
    table: hashmap_table.StateTable, columns: canonical.Columns, items: list[Any]
) -> list[Any]:
    """Each entry's list (ListState) or dict (MapState) of its stored items."""
    counts = columns.counts or [1] * len(columns.keys)
    bounds = list(pairwise(accumulate(counts, initial=0)))
    if table.info.kind is not meta.StateKind.MAP:
        return [items[start:end] for start, end in bounds]
    key_serializer = table.descriptor.key_serializer
    assert key_serializer is not None and columns.user_keys is not None
    user_keys = item_objects(key_serializer, columns.user_keys)
    return [dict(zip(user_keys[start:end], items[start:end], strict=True)) for start, end in bounds]
