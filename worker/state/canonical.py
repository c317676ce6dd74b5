"""The canonical key-group format: how every backend writes one key group of keyed state.

Backends produce one blob per key group (``backend.snapshot_key_group(kg)``); the checkpoint
layer stores the blobs of a subtask in key-group order in one file, with each blob's offset in
``_metadata``, so a restoring subtask reads only the key groups it owns. Each blob stands alone,
which is what lets any parallelism restore any checkpoint. Layout (all integers big-endian)::

    blob    := MAGIC "SJKG" | u16 format_version (1) | u32 key_group | section*
    section := u16 name_len | name (utf-8) | u64 body_len | body

Sections run to the end of the blob, so another layer can append one (``append_section``):
backends own the sections named ``state/<state name>`` and leave the others alone (timers use
``timers/...``). A state section's body::

    body    := u32 meta_len | meta (JSON of StateMetaInfo.to_dict()) | entry*
    entry   := u32 key_len | key | u32 ns_len | namespace | u32 n_items | item * n_items
    item    := [u32 ukey_len | user key]      (MapState only)
               [i64 ttl_timestamp_ms]         (only when meta["ttl"] is not null)
               u32 value_len | value

Keys and namespaces are :func:`streamjob.keycodec.encode_key` bytes, the void namespace is the
single byte ``0x00`` (no key encoding starts with it); values and user keys use the state's
serializers. A value, reducing or aggregating state has one item per entry, a ListState one per
element, a MapState one per user entry. Empty states write no section.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from typing import Any

from streamjob import errors, keycodec
from streamjob.state import meta

MAGIC = b"SJKG"
FORMAT_VERSION = 1
STATE_SECTION_PREFIX = "state/"
VOID_NAMESPACE = b"\x00"

_HEADER = struct.Struct(">4sHI")
_SECTION_NAME_LEN = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")

Item = tuple[bytes | None, int | None, bytes]
"""One canonical item: (user key bytes or None, TTL timestamp or None, value bytes)."""


def state_section_name(state_name: str) -> str:
    return STATE_SECTION_PREFIX + state_name


def encode_namespace(namespace: Any) -> bytes:
    return VOID_NAMESPACE if namespace is None else keycodec.encode_key(namespace)


def decode_namespace(data: bytes) -> Any:
    return None if data == VOID_NAMESPACE else keycodec.decode_key(data)


def encode_section(name: str, body: bytes) -> bytes:
    raw = name.encode("utf-8")
    return _SECTION_NAME_LEN.pack(len(raw)) + raw + _U64.pack(len(body)) + body


def build_key_group(key_group: int, sections: Iterable[tuple[str, bytes]]) -> bytes:
    """One key group's blob from ``(name, body)`` sections."""
    parts = [_HEADER.pack(MAGIC, FORMAT_VERSION, key_group)]
    parts.extend(encode_section(name, body) for name, body in sections)
    return b"".join(parts)


def append_section(blob: bytes, name: str, body: bytes) -> bytes:
    """``blob`` with one more section (how the operator layer adds timers)."""
    return blob + encode_section(name, body)


def read_key_group(data: bytes) -> tuple[int, list[tuple[str, bytes]]]:
    """Split a blob into its key group and ``(name, body)`` sections; refuse foreign bytes."""
    view = memoryview(data)
    if len(view) < _HEADER.size:
        raise errors.StateError(f"key-group blob too short ({len(view)} bytes)")
    magic, version, key_group = _HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise errors.StateError(
            f"not a streamjob key-group blob (magic {bytes(magic)!r}, expected {MAGIC!r})"
        )
    if version != FORMAT_VERSION:
        raise errors.StateError(
            f"key-group blob has format version {version}; this streamjob reads version "
            f"{FORMAT_VERSION}: restore with the streamjob version that wrote the checkpoint"
        )
    pos = _HEADER.size
    sections: list[tuple[str, bytes]] = []
    while pos < len(view):
        (name_len,) = _SECTION_NAME_LEN.unpack_from(view, pos)
        pos += _SECTION_NAME_LEN.size
        name = bytes(view[pos : pos + name_len]).decode("utf-8")
        pos += name_len
        (body_len,) = _U64.unpack_from(view, pos)
        pos += _U64.size
        if pos + body_len > len(view):
            raise errors.StateError(f"key group {key_group}: section {name!r} is truncated")
        sections.append((name, bytes(view[pos : pos + body_len])))
        pos += body_len
    return key_group, sections


def encode_state_meta(info: meta.StateMetaInfo) -> bytes:
    """The ``u32 meta_len | meta`` head of a state section (cacheable per state)."""
    raw = json.dumps(info.to_dict(), separators=(",", ":")).encode("utf-8")
    return _U32.pack(len(raw)) + raw


class StateSectionWriter:
    """Writes one state section body: the meta, then entries."""

    def __init__(self, info: meta.StateMetaInfo, *, head: bytes | None = None) -> None:
        self._out = bytearray(encode_state_meta(info) if head is None else head)
        self._with_user_key = info.kind is meta.StateKind.MAP
        self._with_ttl = info.ttl is not None
        self.entries = 0

    def entry(self, key: Any, namespace: Any, items: list[Item]) -> None:
        out = self._out
        for chunk in (keycodec.encode_key(key), encode_namespace(namespace)):
            out += _U32.pack(len(chunk))
            out += chunk
        out += _U32.pack(len(items))
        for user_key, ts, value in items:
            if self._with_user_key:
                assert user_key is not None
                out += _U32.pack(len(user_key))
                out += user_key
            if self._with_ttl:
                assert ts is not None
                out += _I64.pack(ts)
            out += _U32.pack(len(value))
            out += value
        self.entries += 1

    def body(self) -> bytes:
        return bytes(self._out)


def read_state_meta(body: bytes) -> meta.StateMetaInfo:
    (meta_len,) = _U32.unpack_from(body, 0)
    return meta.StateMetaInfo.from_dict(json.loads(body[4 : 4 + meta_len].decode("utf-8")))


def iter_state_entries(body: bytes) -> Iterator[tuple[Any, Any, list[Item]]]:
    """The ``(key, namespace, items)`` entries of a state section body."""
    info = read_state_meta(body)
    with_user_key = info.kind is meta.StateKind.MAP
    with_ttl = info.ttl is not None
    view = memoryview(body)
    (meta_len,) = _U32.unpack_from(view, 0)
    pos = 4 + meta_len
    end = len(view)

    def chunk() -> bytes:
        nonlocal pos
        (length,) = _U32.unpack_from(view, pos)
        start = pos + 4
        pos = start + length
        if pos > end:
            raise errors.StateError(f"state section {info.name!r} is truncated")
        return bytes(view[start:pos])

    while pos < end:
        key = keycodec.decode_key(chunk())
        namespace = decode_namespace(chunk())
        (count,) = _U32.unpack_from(view, pos)
        pos += 4
        items: list[Item] = []
        for _ in range(count):
            user_key = chunk() if with_user_key else None
            ts = None
            if with_ttl:
                (ts,) = _I64.unpack_from(view, pos)
                pos += 8
            items.append((user_key, ts, chunk()))
        yield key, namespace, items
