"""Capturing a whole key group for a copy-on-write snapshot: copies when values are atomic.

When something the per-entry guard cannot handle is about to change a key group a snapshot has
not serialized yet (a mutable value read, a timer, a window fired:
:mod:`streamjob.state.hashmap_guard`), the snapshot must keep that key group as it is (as of
the barrier). Serializing it there costs about 1 µs per entry (the pickle); but a state whose
stored values are all atomic (numbers, strings, bytes, None: counters, sums, timestamps) is
kept just as well by a shallow copy of its dicts, at a few tens of ns per entry, serialized
later between batches. :func:`capture_key_group` does that per state and serializes at once
the others. Tuples are not copied: proving a tuple immutable means visiting each of its
items, scattered in memory after a long run; measured on 1 GB of 4-tuples, that cost about as
much as pickling them, so a copy would only add work
(:func:`~streamjob.state.hashmap_guard.immutable` looks into tuples only to a ``depth``):

=================  ===========================================================
kind               captured as, when every stored object inside is atomic
=================  ===========================================================
value, reducing,   ``dict.copy()`` of the key group's dicts (values are the
aggregating        user's objects, or ``(value, ts)`` with a TTL)
list               each list as a tuple (the backend appends to its lists)
map                each dict copied (the backend puts into its dicts)
=================  ===========================================================

:meth:`CapturedKeyGroup.parts` later writes exactly the blob that ``snapshot_key_group_parts``
would have written at the capture.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

from streamjob.state import (
    canonical,
    canonical_columns,
    hashmap_guard,
    hashmap_snapshot,
    hashmap_table,
    meta,
)

Frozen = tuple[hashmap_table.StateTable, dict[Any, Any], dict[Any, Any]]
Section = tuple[str, bytes | list[canonical_columns.Part] | Frozen]


immutable = hashmap_guard.immutable


def _items(collections: Iterable[Any]) -> list[Any]:
    return list(chain.from_iterable(collections))


def frozen_copy(dicts: dict[Any, Any], info: meta.StateMetaInfo) -> dict[Any, Any] | None:
    """A copy of one key group's dict that later changes to the state cannot reach, or
    ``None`` if a stored value is not atomic (with a TTL: the value of its ``(value, ts)``)."""
    if not dicts:
        return {}
    depth = 0 if info.ttl is None else 1
    stored = list(dicts.values())
    if info.kind is meta.StateKind.LIST:
        if immutable(_items(stored), depth):
            return dict(zip(dicts, map(tuple, stored), strict=True))
        return None
    if info.kind is meta.StateKind.MAP:
        if immutable(_items(stored)) and immutable(_items(map(dict.values, stored)), depth):
            return dict(zip(dicts, map(dict.copy, stored), strict=True))
        return None
    return dicts.copy() if immutable(stored, depth) else None


class CapturedKeyGroup:
    """One key group's state as it was at the capture: sections serialized then, copies of
    immutable ones (see the module docstring), and restored bytes of unregistered states."""

    __slots__ = ("key_group", "now_ms", "sections")

    def __init__(self, key_group: int, sections: list[Section], now_ms: int) -> None:
        self.key_group = key_group
        self.sections = sections
        self.now_ms = now_ms

    def parts(self) -> list[canonical_columns.Part]:
        """The key group's blob, as parts (serializing the copies)."""
        written: list[tuple[str, bytes | list[canonical_columns.Part]]] = []
        for name, body in self.sections:
            if isinstance(body, tuple):
                table, void, spaced = body
                parts = hashmap_snapshot.write_entries(table, void, spaced, self.now_ms)
                if parts is not None:
                    written.append((name, parts))
            else:
                written.append((name, body))
        self.sections = []
        return canonical.key_group_parts(self.key_group, written)


def capture_key_group(
    tables: dict[str, hashmap_table.StateTable],
    pending: dict[str, dict[int, bytes]],
    key_group: int,
    now_ms: int,
) -> CapturedKeyGroup:
    """Capture ``key_group`` of ``tables`` (and of restored, unregistered ``pending`` bodies)
    in the order ``snapshot_key_group_parts`` writes them."""
    sections: list[Section] = []
    for name, table in tables.items():
        section = canonical.state_section_name(name)
        void, spaced = table.as_of_snapshot(key_group)
        void_copy = frozen_copy(void, table.info)
        spaced_copy = None if void_copy is None else frozen_copy(spaced, table.info)
        if void_copy is not None and spaced_copy is not None:
            if void_copy or spaced_copy:
                sections.append((section, (table, void_copy, spaced_copy)))
            continue
        body = hashmap_snapshot.write_entries(table, void, spaced, now_ms)
        if body is not None:
            sections.append((section, body))
    for name, bodies in pending.items():
        if key_group in bodies:
            sections.append((canonical.state_section_name(name), bodies[key_group]))
    return CapturedKeyGroup(key_group, sections, now_ms)
