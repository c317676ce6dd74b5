"""Stable key encoding and hashing: the bytes a key is stored and partitioned under.

Keys cross processes and outlive them (checkpoints), so they are never hashed with Python's
``hash()`` (salted per process). Instead every key is encoded with a tagged, length-prefixed
encoding and hashed with CRC-32; :mod:`streamjob.keygroups` turns that hash into a key group.

Encoding (frozen: changing it orphans every checkpoint):

* ``str``   -> ``0x01 || u32be(len) || utf-8 bytes``
* ``bytes`` -> ``0x02 || u32be(len) || bytes``
* ``int``   -> ``0x03 || u32be(len) || two's complement, big-endian, in
  ``(bit_length() + 8) // 8`` bytes`` (so -128 takes two bytes, ``ff80``)
* ``tuple`` -> ``0x04 || u32be(count) || encoded elements``

``bool``, ``float`` and ``None`` are refused: ``1``, ``1.0`` and ``True`` are one Python dict key
but would be three different byte strings, so state and partitioning could disagree.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from streamjob import errors

TAG_STR = 0x01
TAG_BYTES = 0x02
TAG_INT = 0x03
TAG_TUPLE = 0x04

_U32 = struct.Struct(">I")


def encode_key(key: Any) -> bytes:
    """Encode ``key`` with the frozen tagged encoding; raise :class:`errors.KeyTypeError`."""
    out = bytearray()
    _encode_into(key, out)
    return bytes(out)


def _encode_into(key: Any, out: bytearray) -> None:
    kind = type(key)
    if kind is str:
        data = key.encode("utf-8")
        out.append(TAG_STR)
        out += _U32.pack(len(data))
        out += data
    elif kind is bytes:
        out.append(TAG_BYTES)
        out += _U32.pack(len(key))
        out += key
    elif kind is int:
        data = key.to_bytes((key.bit_length() + 8) // 8, "big", signed=True)
        out.append(TAG_INT)
        out += _U32.pack(len(data))
        out += data
    elif kind is tuple:
        out.append(TAG_TUPLE)
        out += _U32.pack(len(key))
        for item in key:
            _encode_into(item, out)
    else:
        raise errors.KeyTypeError(
            f"key {key!r} has type {kind.__name__}; keys must be str, bytes, int or tuples of "
            "these (bool, float and None are refused because 1, 1.0 and True collide as dict "
            "keys but not as bytes). Make the key selector return one of the supported types, "
            "e.g. str(x) or round(x)."
        )


def decode_key(data: bytes) -> Any:
    """Inverse of :func:`encode_key`; raises ``ValueError`` on trailing or malformed bytes."""
    key, end = _decode_at(data, 0)
    if end != len(data):
        raise ValueError(f"trailing bytes after encoded key ({len(data) - end} bytes)")
    return key


def _decode_at(data: bytes, pos: int) -> tuple[Any, int]:
    tag = data[pos]
    (length,) = _U32.unpack_from(data, pos + 1)
    start = pos + 5
    if tag == TAG_TUPLE:
        items = []
        for _ in range(length):
            item, start = _decode_at(data, start)
            items.append(item)
        return tuple(items), start
    end = start + length
    if end > len(data):
        raise ValueError("encoded key is truncated")
    chunk = data[start:end]
    if tag == TAG_STR:
        return chunk.decode("utf-8"), end
    if tag == TAG_BYTES:
        return bytes(chunk), end
    if tag == TAG_INT:
        return int.from_bytes(chunk, "big", signed=True), end
    raise ValueError(f"unknown key tag 0x{tag:02x}")


def stable_hash(key: Any) -> int:
    """CRC-32 of the encoded key as a signed 32-bit int (Java ``int`` semantics)."""
    return to_int32(zlib.crc32(encode_key(key)))


def to_int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value
