"""Reading state-section bodies of canonical format version 1 (checkpoints of older streamjobs).

Version 1 wrote a state section's entries one after another (all integers big-endian)::

    body    := u32 meta_len | meta (JSON of StateMetaInfo.to_dict()) | entry*
    entry   := u32 key_len | key | u32 ns_len | namespace | u32 n_items | item * n_items
    item    := [u32 ukey_len | user key]      (MapState only)
               [i64 ttl_timestamp_ms]         (only when meta["ttl"] is not null)
               u32 value_len | value

Its first byte is the high byte of ``meta_len``, always 0 (a meta is far below 16 MiB), which is
how :mod:`streamjob.state.canonical` tells it from a version-2 body (first byte 0x02). Nothing
writes this layout any more, but a version-2 blob can carry a version-1 body unchanged: state
restored from an old checkpoint whose job never registered it is written back as it came.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from streamjob import errors, keycodec

_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")

Item = tuple[bytes | None, int | None, bytes]


def meta_bounds(body: bytes) -> tuple[int, int]:
    """Where the meta JSON starts and ends."""
    (meta_len,) = _U32.unpack_from(body, 0)
    return 4, 4 + meta_len


def iter_entries(
    body: bytes,
    *,
    name: str,
    with_user_key: bool,
    with_ttl: bool,
    decode_key: Callable[[bytes], Any] = keycodec.decode_key,
    decode_namespace: Callable[[bytes], Any],
) -> Iterator[tuple[Any, Any, list[Item]]]:
    """The ``(key, namespace, items)`` entries of a version-1 body (``decode_key`` and
    ``decode_namespace`` may be ``bytes``, to keep them encoded)."""
    view = memoryview(body)
    pos = meta_bounds(body)[1]
    end = len(view)

    def chunk() -> bytes:
        nonlocal pos
        (length,) = _U32.unpack_from(view, pos)
        start = pos + 4
        pos = start + length
        if pos > end:
            raise errors.StateError(f"state section {name!r} is truncated")
        return bytes(view[start:pos])

    while pos < end:
        key = decode_key(chunk())
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
