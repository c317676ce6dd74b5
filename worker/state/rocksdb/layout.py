"""How the RocksDB backend lays state out in bytes: keys by key group, values with TTL stamps.

Keys (DESIGN.md section 5), in one column family per state::

    key_group (1 byte if max_parallelism <= 128, else 2; big-endian)
    || key        (streamjob.keycodec encoding: tagged, length-prefixed, so self-delimiting)
    || namespace  (0x00 for the void namespace, else the keycodec encoding of the namespace)
    [|| u64 big-endian sequence number]   ListState: one entry per element, in order
    [|| user key bytes]                   MapState: one entry per user key (its serializer)

Everything of a key group is one contiguous key range, so a key-group range is too (range scans
for snapshots, ``delete_range`` and SST ingestion for rescaling). The key and namespace
encodings are prefix-free, so ``key_group || key || namespace`` is the exact prefix of one
list or map. The key and namespace bytes are the canonical format's own
(:mod:`streamjob.state.canonical`), so a snapshot copies them without decoding.

Values: the state serializer's bytes, preceded by the i64 big-endian last-access timestamp
when the state has a TTL.
"""

from __future__ import annotations

import struct
from typing import Any

from streamjob import keycodec
from streamjob.state import canonical

VOID = canonical.VOID_NAMESPACE
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
TS_BYTES = _I64.size


def key_group_width(max_parallelism: int) -> int:
    return 1 if max_parallelism <= 128 else 2


def key_group_prefix(key_group: int, width: int) -> bytes:
    """The first bytes of every key of ``key_group`` (``key_group == max_parallelism`` gives
    the exclusive upper bound of the whole key space)."""
    return key_group.to_bytes(width, "big")


def key_group_of(raw: bytes, width: int) -> int:
    return int.from_bytes(raw[:width], "big")


def entry_prefix(kg_prefix: bytes, key: Any, namespace: Any) -> bytes:
    """``key_group || key || namespace``: the whole key of a single-value state's entry."""
    if namespace is None:
        return kg_prefix + keycodec.encode_key(key) + VOID
    return kg_prefix + keycodec.encode_key(key) + keycodec.encode_key(namespace)


def _encoded_end(data: bytes, pos: int) -> int:
    """Where the keycodec encoding starting at ``pos`` ends."""
    tag = data[pos]
    length = int(_U32.unpack_from(data, pos + 1)[0])
    pos += 5
    if tag == keycodec.TAG_TUPLE:
        for _ in range(length):
            pos = _encoded_end(data, pos)
        return pos
    return pos + length


def split(raw: bytes, width: int) -> tuple[int, int]:
    """Offsets in ``raw`` where the key ends and where the namespace ends."""
    if raw[width] == keycodec.TAG_TUPLE:
        key_end = _encoded_end(raw, width)
    else:
        key_end = width + 5 + int(_U32.unpack_from(raw, width + 1)[0])
    if raw[key_end] == 0:
        return key_end, key_end + 1
    return key_end, _encoded_end(raw, key_end)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest byte string above every string that starts with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\xff" * (len(prefix) + 1)
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def sequence(number: int) -> bytes:
    return _U64.pack(number)


def sequence_of(raw: bytes) -> int:
    (number,) = _U64.unpack_from(raw, len(raw) - _U64.size)
    return int(number)


def stamp(ts: int, value: bytes) -> bytes:
    return _I64.pack(ts) + value


def unstamp(data: bytes) -> tuple[int, bytes]:
    (ts,) = _I64.unpack_from(data, 0)
    return int(ts), data[TS_BYTES:]
