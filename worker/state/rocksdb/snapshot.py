"""Canonical key-group sections from and into the RocksDB backend's column families.

The canonical format (:mod:`streamjob.state.canonical`) is what savepoints, backend changes and
non-incremental checkpoints use. Its entries carry keys and namespaces in the same encodings as
this backend's RocksDB keys (:mod:`streamjob.state.rocksdb.layout`), and values in the state
serializer's bytes, so both directions copy bytes without deserializing anything (through the
canonical module's encoded-key interface: ``StateSectionWriter.encoded_entry`` and
``iter_state_entries(decode=False)``):

* :func:`write_section`: one range scan of a key group in a state's column family; a list's
  elements and a map's entries are consecutive there, and become one canonical entry;
* :func:`read_section`: each canonical entry back into RocksDB entries, in a write batch,
  adding or dropping TTL timestamps when the registered state's TTL differs from the
  checkpoint's (entries without one are stamped with the restore time).
"""

from __future__ import annotations

from collections.abc import Callable

from streamjob.state import canonical, meta
from streamjob.state.rocksdb import db as db_mod
from streamjob.state.rocksdb import layout


def write_section(
    database: db_mod.StateDB,
    column: db_mod.Column,
    info: meta.StateMetaInfo,
    *,
    lower: bytes,
    upper: bytes,
    width: int,
    now_ms: int,
) -> bytes | None:
    """The canonical section body of the keys in ``[lower, upper)``, or None when empty."""
    with_ttl = info.ttl is not None
    is_map = info.kind is meta.StateKind.MAP
    drop_before = (
        now_ms - info.ttl.ttl_ms
        if info.ttl is not None and info.ttl.cleanup_in_full_snapshot
        else None
    )
    writer = canonical.StateSectionWriter(info)
    prefix = b""
    key_end = 0
    items: list[canonical.Item] = []

    def emit() -> None:
        if items:
            writer.encoded_entry(prefix[width:key_end], prefix[key_end:], items)

    for raw, data in database.scan(column, lower, upper):
        raw_key_end, ns_end = layout.split(raw, width)
        if raw[:ns_end] != prefix:
            emit()
            prefix = raw[:ns_end]
            key_end = raw_key_end
            items = []
        ts: int | None = None
        value = data
        if with_ttl:
            ts, value = layout.unstamp(data)
            if drop_before is not None and ts <= drop_before:
                continue
        items.append((raw[ns_end:] if is_map else None, ts, value))
    emit()
    return writer.body() if writer.entries else None


def read_section(
    body: bytes,
    *,
    batch: db_mod.Batch,
    column: db_mod.Column,
    stored_as: meta.StateMetaInfo,
    kg_prefix: bytes,
    now_ms: int,
    next_sequence: Callable[[int], int],
    before_entry: Callable[[bytes], None] | None = None,
) -> None:
    """Put the entries of a canonical section body into ``batch``, in the column's format
    (``stored_as``: the TTL decides whether values carry timestamps). ``before_entry(prefix)``
    runs before each entry, so a restore into a non-empty key group can drop the old ones."""
    kind = stored_as.kind
    stamped = stored_as.ttl is not None
    for key, namespace, items in canonical.iter_state_entries(body, decode=False):
        prefix = kg_prefix + key + namespace
        if before_entry is not None:
            before_entry(prefix)
        first = next_sequence(len(items)) if kind is meta.StateKind.LIST else 0
        for index, (user_key, ts, value) in enumerate(items):
            if kind is meta.StateKind.LIST:
                raw = prefix + layout.sequence(first + index)
            elif kind is meta.StateKind.MAP:
                assert user_key is not None
                raw = prefix + user_key
            else:
                raw = prefix
            data = layout.stamp(now_ms if ts is None else ts, value) if stamped else value
            batch.put(column, raw, data)
