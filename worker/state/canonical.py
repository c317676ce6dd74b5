"""The canonical key-group format: how every backend writes one key group of keyed state.

Backends produce one blob per key group (``backend.snapshot_key_group(kg)``); the checkpoint
layer stores the blobs of a subtask in key-group order in one file, with each blob's offset in
``_metadata``, so a restoring subtask reads only the key groups it owns. Each blob stands alone,
which is what lets any parallelism restore any checkpoint. Layout (all integers big-endian)::

    blob    := MAGIC "SJKG" | u16 format_version (2) | u32 key_group | section*
    section := u16 name_len | name (utf-8) | u64 body_len | body

Sections run to the end of the blob, so another layer can append one (``append_section``):
backends own the sections named ``state/<state name>`` and leave the others alone (timers use
``timers/...``). A state section's body starts with a layout byte, then the state's meta info::

    body    := u8 0x02 | u32 meta_len | meta (JSON of StateMetaInfo.to_dict()) | columns

and its entries column by column (:mod:`streamjob.state.canonical_columns`): keys, namespaces,
items per entry, then the items' user keys (MapState), TTL timestamps (with a TTL) and values.
Keys and namespaces are :func:`streamjob.keycodec.encode_key` bytes (a column of str keys
stores their UTF-8 only), the void namespace is the single byte ``0x00`` (no key encoding starts
with it); values and user keys use the state's serializers (the pickle serializer may write a
whole column as one pickle). A value, reducing or aggregating state has one item per entry, a
ListState one per element, a MapState one per user entry. Empty states write no section.

Reading: :func:`read_columns` (bulk, what the hashmap backend uses) or
:func:`iter_state_entries` (entry by entry, items as bytes); both can leave keys and namespaces
encoded (``decode=False``) for a backend that stores them so, which writes with
:meth:`StateSectionWriter.encoded_entry`.

Versions: 1 wrote entries one after another (:mod:`streamjob.state.canonical_v1`); 2 writes
columns, which snapshot and restore several times faster in Python. Both are read. A version-1
body starts with a zero byte (the high byte of its meta length), so each body says its own
layout: a version-2 blob may carry a version-1 body written back unchanged (restored state the
job never registered).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from typing import Any

from streamjob import errors, keycodec
from streamjob.state import canonical_columns, canonical_v1, meta, serializers

MAGIC = b"SJKG"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
STATE_SECTION_PREFIX = "state/"
VOID_NAMESPACE = b"\x00"
LAYOUT_V1 = 0x00
LAYOUT_COLUMNS = canonical_columns.LAYOUT

_HEADER = struct.Struct(">4sHI")
_SECTION_NAME_LEN = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")

Item = tuple[bytes | None, int | None, bytes]
"""One canonical item: (user key bytes or None, TTL timestamp or None, value bytes)."""

Columns = canonical_columns.Columns
Items = canonical_columns.Items
PICKLE = meta.SerializerRef(serializers.PickleSerializer.name, serializers.PickleSerializer.version)
"""The serializer whose item columns may be written as one pickle."""


def state_section_name(state_name: str) -> str:
    return STATE_SECTION_PREFIX + state_name


def encode_namespace(namespace: Any) -> bytes:
    return VOID_NAMESPACE if namespace is None else keycodec.encode_key(namespace)


def decode_namespace(data: bytes) -> Any:
    return None if data == VOID_NAMESPACE else keycodec.decode_key(data)


def _section_head(name: str, body_len: int) -> bytes:
    raw = name.encode("utf-8")
    return _SECTION_NAME_LEN.pack(len(raw)) + raw + _U64.pack(body_len)


def encode_section(name: str, body: bytes) -> bytes:
    return _section_head(name, len(body)) + body


def build_key_group(
    key_group: int, sections: Iterable[tuple[str, bytes | list[canonical_columns.Part]]]
) -> bytes:
    """One key group's blob from ``(name, body)`` sections; a body may be given as its parts
    (:func:`canonical_columns.body_parts`), so that it is copied once, into the blob."""
    return b"".join(key_group_parts(key_group, sections))


def key_group_parts(
    key_group: int, sections: Iterable[tuple[str, bytes | list[canonical_columns.Part]]]
) -> list[canonical_columns.Part]:
    """:func:`build_key_group` as the blob's parts, not joined: the blob is their
    concatenation (a checkpoint joins a whole file's parts once, in its upload thread)."""
    parts: list[canonical_columns.Part] = [_HEADER.pack(MAGIC, FORMAT_VERSION, key_group)]
    append_sections(parts, sections)
    return parts


def append_sections(
    parts: list[canonical_columns.Part],
    sections: Iterable[tuple[str, bytes | list[canonical_columns.Part]]],
) -> None:
    """Add sections to a blob given as its parts (how the operator layer adds timers)."""
    for name, body in sections:
        if isinstance(body, list):
            parts.append(_section_head(name, sum(map(len, body))))
            parts.extend(body)
        else:
            parts.append(_section_head(name, len(body)))
            parts.append(body)


def append_section(blob: bytes, name: str, body: bytes) -> bytes:
    """``blob`` with one more section (a copy; :func:`append_sections` adds to parts)."""
    return blob + encode_section(name, body)


def read_key_group(data: bytes | memoryview) -> tuple[int, list[tuple[str, bytes]]]:
    """Split a blob into its key group and ``(name, body)`` sections; refuse foreign bytes."""
    key_group, sections = split_key_group(data)
    return key_group, [(name, bytes(body)) for name, body in sections]


def split_key_group(data: bytes | memoryview) -> tuple[int, list[tuple[str, memoryview]]]:
    """:func:`read_key_group` without copies: each body is a view into ``data`` (what a
    restore uses: the views go straight to the decoders)."""
    view = memoryview(data)
    if len(view) < _HEADER.size:
        raise errors.StateError(f"key-group blob too short ({len(view)} bytes)")
    magic, version, key_group = _HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise errors.StateError(
            f"not a streamjob key-group blob (magic {bytes(magic)!r}, expected {MAGIC!r})"
        )
    if version not in READABLE_VERSIONS:
        raise errors.StateError(
            f"key-group blob has format version {version}; this streamjob reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}: restore with the streamjob version that "
            "wrote the checkpoint"
        )
    pos = _HEADER.size
    sections: list[tuple[str, memoryview]] = []
    while pos < len(view):
        (name_len,) = _SECTION_NAME_LEN.unpack_from(view, pos)
        pos += _SECTION_NAME_LEN.size
        name = bytes(view[pos : pos + name_len]).decode("utf-8")
        pos += name_len
        (body_len,) = _U64.unpack_from(view, pos)
        pos += _U64.size
        if pos + body_len > len(view):
            raise errors.StateError(f"key group {key_group}: section {name!r} is truncated")
        sections.append((name, view[pos : pos + body_len]))
        pos += body_len
    return key_group, sections


# -- state section bodies -------------------------------------------------------------------------
def encode_state_meta(info: meta.StateMetaInfo) -> bytes:
    """The ``u8 layout | u32 meta_len | meta`` head of a state section (cacheable per state)."""
    raw = json.dumps(info.to_dict(), separators=(",", ":")).encode("utf-8")
    return bytes((LAYOUT_COLUMNS,)) + _U32.pack(len(raw)) + raw


def _meta_bounds(body: bytes | memoryview) -> tuple[int, int]:
    if not body:
        raise errors.StateError("empty state section")
    layout = body[0]
    if layout == LAYOUT_V1:
        return canonical_v1.meta_bounds(bytes(body[:4]))
    if layout == LAYOUT_COLUMNS:
        (meta_len,) = _U32.unpack_from(body, 1)
        return 5, 5 + meta_len
    raise errors.StateError(f"unknown state section layout 0x{layout:02x}")


def read_state_meta(body: bytes | memoryview) -> meta.StateMetaInfo:
    start, end = _meta_bounds(body)
    return meta.StateMetaInfo.from_dict(json.loads(str(body[start:end], "utf-8")))


def read_columns(
    body: bytes | memoryview, *, decode: bool = True
) -> tuple[meta.StateMetaInfo, Columns]:
    """The meta info and the entries, column by column, of a section body of either layout
    (a ``memoryview`` is read without copying its big columns).

    With ``decode=False`` keys and namespaces stay bytes (a void namespace column stays
    ``None``): what a backend that stores encoded keys (RocksDB) copies without decoding."""
    info = read_state_meta(body)
    with_user_keys = info.kind is meta.StateKind.MAP
    with_ttl = info.ttl is not None
    namespace_decoder = decode_namespace if decode else None
    if body[0] == LAYOUT_COLUMNS:
        columns = canonical_columns.decode_body(
            body,
            _meta_bounds(body)[1],
            name=info.name,
            user_keys=with_user_keys,
            user_keys_pickled=info.key_serializer == PICKLE,
            timestamps=with_ttl,
            values_pickled=info.value_serializer == PICKLE,
            decode_namespace=namespace_decoder,
        )
        return info, columns
    return info, _v1_columns(bytes(body), info, decode)


def _v1_columns(body: bytes, info: meta.StateMetaInfo, decode: bool) -> Columns:
    with_user_keys = info.kind is meta.StateKind.MAP
    with_ttl = info.ttl is not None
    columns = Columns([], [], [], Items(chunks=[]), [], Items(chunks=[]))
    assert columns.namespaces is not None and columns.counts is not None
    assert columns.user_keys is not None and columns.user_keys.chunks is not None
    assert columns.timestamps is not None and columns.values.chunks is not None
    for key, namespace, items in canonical_v1.iter_entries(
        body,
        name=info.name,
        with_user_key=with_user_keys,
        with_ttl=with_ttl,
        decode_namespace=decode_namespace if decode else bytes,
        decode_key=keycodec.decode_key if decode else bytes,
    ):
        columns.keys.append(key)
        columns.namespaces.append(namespace)
        columns.counts.append(len(items))
        for user_key, ts, value in items:
            if user_key is not None:
                columns.user_keys.chunks.append(user_key)
            if ts is not None:
                columns.timestamps.append(ts)
            columns.values.chunks.append(value)
    void = None if decode else VOID_NAMESPACE
    if all(namespace == void for namespace in columns.namespaces):
        columns.namespaces = None
    if all(count == 1 for count in columns.counts):
        columns.counts = None
    if not with_user_keys:
        columns.user_keys = None
    if not with_ttl:
        columns.timestamps = None
    return columns


def item_bytes(items: Items) -> list[bytes]:
    """Each item's serializer bytes (a pickled column's items are pickled again one by one)."""
    if items.chunks is not None:
        return items.chunks
    assert items.objects is not None
    return serializers.serialize_all(serializers.PickleSerializer(), items.objects)


def iter_state_entries(
    body: bytes, *, decode: bool = True
) -> Iterator[tuple[Any, Any, list[Item]]]:
    """The ``(key, namespace, items)`` entries of a state section body (either layout).

    With ``decode=False`` the key and namespace are bytes (:func:`keycodec.encode_key`,
    :func:`encode_namespace`), for :meth:`StateSectionWriter.encoded_entry`."""
    _, columns = read_columns(body, decode=decode)
    void = None if decode else VOID_NAMESPACE
    namespaces = columns.namespaces
    counts = columns.counts
    user_keys = None if columns.user_keys is None else item_bytes(columns.user_keys)
    timestamps = columns.timestamps
    values = item_bytes(columns.values)
    start = 0
    for index, key in enumerate(columns.keys):
        end = start + (1 if counts is None else counts[index])
        items: list[Item] = [
            (
                None if user_keys is None else user_keys[i],
                None if timestamps is None else timestamps[i],
                values[i],
            )
            for i in range(start, end)
        ]
        yield key, void if namespaces is None else namespaces[index], items
        start = end


class StateSectionWriter:
    """Writes one state section body entry by entry, every item column as chunks (the items'
    bytes as given). Either :meth:`entry` (keys and namespaces) or :meth:`encoded_entry`
    (their bytes) for all entries of a body. Backends with bulk data use
    :func:`streamjob.state.canonical_columns.body_parts` directly."""

    def __init__(self, info: meta.StateMetaInfo, *, head: bytes | None = None) -> None:
        self._head = encode_state_meta(info) if head is None else head
        self._with_user_key = info.kind is meta.StateKind.MAP
        self._with_ttl = info.ttl is not None
        self._encoded: bool | None = None
        self._keys: list[Any] = []
        self._namespaces: list[bytes] = []
        self._counts: list[int] = []
        self._user_keys: list[bytes] = []
        self._timestamps: list[int] = []
        self._values: list[bytes] = []

    @property
    def entries(self) -> int:
        return len(self._keys)

    def entry(self, key: Any, namespace: Any, items: list[Item]) -> None:
        """An entry of a key and a namespace (``None``: void)."""
        self._add(False, key, encode_namespace(namespace), items)

    def encoded_entry(self, key: bytes, namespace: bytes, items: list[Item]) -> None:
        """An entry of :func:`keycodec.encode_key` and :func:`encode_namespace` bytes."""
        self._add(True, key, namespace, items)

    def _add(self, encoded: bool, key: Any, namespace: bytes, items: list[Item]) -> None:
        if self._encoded is None:
            self._encoded = encoded
        elif self._encoded is not encoded:
            raise TypeError("use entry() or encoded_entry() for every entry of one section")
        self._keys.append(key)
        self._namespaces.append(namespace)
        self._counts.append(len(items))
        for user_key, ts, value in items:
            if self._with_user_key:
                assert user_key is not None
                self._user_keys.append(user_key)
            if self._with_ttl:
                assert ts is not None
                self._timestamps.append(ts)
            self._values.append(value)

    def body(self) -> bytes:
        void = all(namespace == VOID_NAMESPACE for namespace in self._namespaces)
        chunk_items = canonical_columns.chunk_items
        parts = canonical_columns.body_parts(
            self._head,
            keys=self._keys,
            keys_encoded=bool(self._encoded),
            namespaces=None if void else self._namespaces,
            counts=None if all(count == 1 for count in self._counts) else self._counts,
            user_keys=chunk_items(self._user_keys) if self._with_user_key else None,
            timestamps=self._timestamps if self._with_ttl else None,
            values=chunk_items(self._values),
            n_items=len(self._values),
        )
        return b"".join(parts)
