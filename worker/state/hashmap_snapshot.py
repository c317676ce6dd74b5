"""Converting the hashmap backend's stored values to canonical sections and back.

:func:`write_section` turns one :class:`StateTable`'s key group into a canonical state section
body (:mod:`streamjob.state.canonical`); :func:`read_section` loads one into a table. Stored
shapes (see :mod:`streamjob.state.hashmap_states` and :mod:`streamjob.state.hashmap_ttl`):

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
"""

from __future__ import annotations

from typing import Any

from streamjob.state import canonical, hashmap_table, meta


def write_section(table: hashmap_table.StateTable, key_group: int, now_ms: int) -> bytes | None:
    """The section body of ``key_group``, or ``None`` when the state has nothing there."""
    if table.is_empty(key_group):
        return None
    info = table.info
    descriptor = table.descriptor
    serialize = descriptor.serializer.serialize
    key_serializer = descriptor.key_serializer
    ttl = info.ttl
    drop_expired_before = (
        now_ms - ttl.ttl_ms if ttl is not None and ttl.cleanup_in_full_snapshot else None
    )
    writer = canonical.StateSectionWriter(info, head=table.meta_head)
    for key, namespace, stored in table.entries(key_group):
        items: list[canonical.Item]
        if info.kind is meta.StateKind.LIST:
            elements = stored if ttl is not None else [(value, None) for value in stored]
            items = [(None, ts, serialize(value)) for value, ts in elements]
        elif info.kind is meta.StateKind.MAP:
            assert key_serializer is not None
            entries = stored.items() if ttl is not None else _no_ts(stored.items())
            items = [
                (key_serializer.serialize(user_key), ts, serialize(value))
                for user_key, (value, ts) in entries
            ]
        else:
            value, ts = stored if ttl is not None else (stored, None)
            items = [(None, ts, serialize(value))]
        if drop_expired_before is not None:
            items = [item for item in items if _ts(item) > drop_expired_before]
        if items:
            writer.entry(key, namespace, items)
    return writer.body() if writer.entries else None


def _no_ts(pairs: Any) -> list[tuple[Any, tuple[Any, None]]]:
    return [(user_key, (value, None)) for user_key, value in pairs]


def _ts(item: canonical.Item) -> int:
    ts = item[1]
    assert ts is not None
    return ts


def read_section(table: hashmap_table.StateTable, key_group: int, body: bytes, now_ms: int) -> None:
    """Load a canonical section body into ``table`` (entries replace existing ones)."""
    descriptor = table.descriptor
    deserialize = descriptor.serializer.deserialize
    key_serializer = descriptor.key_serializer
    kind = table.info.kind
    with_ttl = table.info.ttl is not None

    def stamped(value: Any, ts: int | None) -> Any:
        if not with_ttl:
            return value
        return (value, now_ms if ts is None else ts)

    for key, namespace, items in canonical.iter_state_entries(body):
        stored: Any
        if kind is meta.StateKind.LIST:
            stored = [stamped(deserialize(value), ts) for _, ts, value in items]
        elif kind is meta.StateKind.MAP:
            assert key_serializer is not None
            stored = {
                key_serializer.deserialize(_user_key(user_key)): stamped(deserialize(value), ts)
                for user_key, ts, value in items
            }
        else:
            ((_, ts, value),) = items
            stored = stamped(deserialize(value), ts)
        if stored or kind not in (meta.StateKind.LIST, meta.StateKind.MAP):
            table.put(key_group, key, namespace, stored)


def _user_key(data: bytes | None) -> bytes:
    assert data is not None, "a map state item has no user key"
    return data
