"""The columnar state-section body of canonical format version 2: encoding and decoding.

:mod:`streamjob.state.canonical` frames blobs and sections; this module lays out one state
section's entries column by column, so that a backend writes and reads a key group with a few
bulk operations (``array`` lengths, one ``join``, one pickle) instead of a dozen Python steps
per entry (a column of str keys is one ``join`` and one ``split``). Layout (all integers
big-endian)::

    body       := u8 0x02 | u32 meta_len | meta | u32 n_entries | u32 n_items
                  | keys | namespaces | counts | user_keys? | timestamps? | values
    keys       := u8 0x00 | chunks(n_entries)   each chunk is keycodec.encode_key(key)
                | u8 0x01 | u64 len | UTF-8     every key is a str without NUL: the keys
                                                joined by NUL ("\\0"), in UTF-8
    namespaces := u8 0x00 | chunks(n_entries)   each chunk is canonical.encode_namespace(ns)
                | u8 0x02                       every namespace is the void namespace
    counts     := u8 0x00 | u32 * n_entries     items per entry (their sum is n_items)
                | u8 0x03                       one item per entry
    user_keys  := items(n_items)                MapState only (its key serializer)
    timestamps := i64 * n_items                 only when meta["ttl"] is not null
    values     := items(n_items)                (the value serializer)
    items(n)   := u8 0x00 | chunks(n)           each chunk is the serializer's bytes of an item
                | u8 0x04 | u64 len | pickle    serializer "pickle" v1 only: one pickle
                                                (protocol 5) of the list of the items
    chunks(n)  := u32 * n (lengths) | the n chunks, concatenated

Entry ``i`` is ``(keys[i], namespaces[i], items)``, its items being the next ``counts[i]`` of
``user_keys``, ``timestamps`` and ``values`` (a value, reducing or aggregating state has one
item per entry, a ListState one per element, a MapState one per user entry), as in version 1.

A pickled item column pickles an object that several items of the key group hold once (pickle's
memo), so after a restore they hold one object again, as they did in the running job (pickled
one by one, each would get its own copy); an object shared inside one item stays shared either
way. Items that are all numbers, str, bytes or None are written without the memo, which is
several times faster and changes nothing for immutable values. A reader unpickles a column only
for a state whose meta names the pickle serializer: a state declared as JSON never runs pickle
code.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any

from streamjob import errors, keycodec

LAYOUT = 0x02
KEYS_ENCODED = 0x00
KEYS_STR = 0x01
NAMESPACES_ENCODED = 0x00
NAMESPACES_VOID = 0x02
COUNTS_LISTED = 0x00
COUNTS_ONE = 0x03
ITEMS_CHUNKS = 0x00
ITEMS_PICKLED = 0x04

_ATOMIC = frozenset({int, float, complex, str, bytes, bool, type(None)})
_BIG_ENDIAN = sys.byteorder == "big"
_COUNTS = struct.Struct(">II")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
assert array("I").itemsize == 4 and array("q").itemsize == 8, "unsupported platform"


Part = bytes | memoryview
"""A piece of a body; a body is the concatenation of its parts (joined once, by the caller)."""


@dataclass(slots=True)
class Items:
    """A decoded item column: each item's serializer bytes, or (pickled column) the items."""

    chunks: list[bytes] | None = None
    objects: list[Any] | None = None


@dataclass(slots=True)
class Columns:
    """One decoded section body. ``namespaces`` is ``None`` when every namespace is void and
    ``counts`` when every entry has one item; ``user_keys`` and ``timestamps`` are ``None``
    when the state has none."""

    keys: list[Any]
    namespaces: list[Any] | None
    counts: list[int] | None
    user_keys: Items | None
    timestamps: list[int] | None
    values: Items


# -- writing --------------------------------------------------------------------------------------
def _numbers(values: Iterable[int], typecode: str = "I") -> bytes:
    packed = array(typecode, values)
    if not _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _chunks(items: Sequence[bytes]) -> list[bytes]:
    return [_numbers(map(len, items)), *items]


def chunk_items(items: Sequence[bytes]) -> list[Part]:
    """An item column of serialized items (the parts of ``items(n)``, to be joined)."""
    return [bytes((ITEMS_CHUNKS,)), *_chunks(items)]


def pickled_items(objects: list[Any], protocol: int) -> list[Part]:
    """An item column as one pickle of the list of ``objects`` (see the module docstring)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol)
    pickler.fast = set(map(type, objects)) <= _ATOMIC  # no memo needed: nothing to share
    pickler.dump(objects)
    data = out.getbuffer()  # no copy: the body's join copies it once
    return [bytes((ITEMS_PICKLED,)), _U64.pack(len(data)), data]


def _key_column(keys: Sequence[Any], encoded: bool) -> list[Part]:
    if not encoded and keys:
        try:
            joined = "\0".join(keys)
        except TypeError:  # not every key is a str
            pass
        else:
            if joined.count("\0") == len(keys) - 1:  # no key holds a NUL itself
                data = joined.encode("utf-8")
                return [bytes((KEYS_STR,)), _U64.pack(len(data)), data]
    if not encoded:
        keys = [keycodec.encode_key(key) for key in keys]
    return [bytes((KEYS_ENCODED,)), *_chunks(keys)]


def body_parts(
    head: bytes,
    *,
    keys: Sequence[Any],
    namespaces: Sequence[bytes] | None,
    counts: Sequence[int] | None,
    user_keys: list[Part] | None,
    timestamps: Sequence[int] | None,
    values: list[Part],
    n_items: int,
    keys_encoded: bool = False,
) -> list[Part]:
    """A section body's parts. ``head`` is :func:`canonical.encode_state_meta`'s (it starts
    with the layout byte); ``keys`` are keys, or their keycodec bytes with ``keys_encoded``;
    ``namespaces`` are encoded (``None``: all void); ``counts`` ``None`` means one item per
    entry; ``user_keys`` and ``values`` are item columns (:func:`chunk_items`,
    :func:`pickled_items`) of ``n_items`` items."""
    parts: list[Part] = [head, _COUNTS.pack(len(keys), n_items)]
    parts.extend(_key_column(keys, keys_encoded))
    if namespaces is None:
        parts.append(bytes((NAMESPACES_VOID,)))
    else:
        parts.append(bytes((NAMESPACES_ENCODED,)))
        parts.extend(_chunks(namespaces))
    if counts is None:
        parts.append(bytes((COUNTS_ONE,)))
    else:
        parts.append(bytes((COUNTS_LISTED,)))
        parts.append(_numbers(counts))
    if user_keys is not None:
        parts.extend(user_keys)
    if timestamps is not None:
        parts.append(_numbers(timestamps, "q"))
    parts.extend(values)
    return parts


# -- reading --------------------------------------------------------------------------------------
class _Reader:
    """A cursor over one body that refuses to read past its end. Over a ``memoryview`` the big
    columns (a pickle, the joined str keys) are decoded from views, without copies."""

    __slots__ = ("body", "name", "pos")

    def __init__(self, body: bytes | memoryview, pos: int, name: str) -> None:
        self.body = body
        self.pos = pos
        self.name = name

    def fail(self, problem: str) -> errors.StateError:
        return errors.StateError(f"state section {self.name!r}: {problem}")

    def take(self, size: int) -> bytes | memoryview:
        start = self.pos
        end = start + size
        if end > len(self.body):
            raise self.fail("truncated")
        self.pos = end
        return self.body[start:end]

    def tag(self, allowed: tuple[int, ...], column: str) -> int:
        (tag,) = self.take(1)
        if tag not in allowed:
            raise self.fail(f"unknown {column} column encoding 0x{tag:02x}")
        return tag

    def numbers(self, count: int, typecode: str = "I") -> array[int]:
        packed = array(typecode)
        packed.frombytes(self.take(count * packed.itemsize))
        if not _BIG_ENDIAN:
            packed.byteswap()
        return packed

    def chunks(self, count: int) -> tuple[bytes, list[int]]:
        """The concatenated chunks (as bytes: each chunk is sliced out of them and handed to a
        serializer) and their offsets (``count + 1`` of them, from 0)."""
        offsets = list(accumulate(self.numbers(count), initial=0))
        return bytes(self.take(offsets[-1])), offsets

    def items(self, count: int, column: str, *, pickled_allowed: bool) -> Items:
        if self.tag((ITEMS_CHUNKS, ITEMS_PICKLED), column) == ITEMS_CHUNKS:
            payload, offsets = self.chunks(count)
            return Items(chunks=[payload[start:end] for start, end in pairwise(offsets)])
        if not pickled_allowed:
            raise self.fail(f"a pickled {column} column, but the state's serializer is not pickle")
        (size,) = _U64.unpack(self.take(_U64.size))
        objects = pickle.loads(self.take(size))  # documented: trusted checkpoint storage only
        if type(objects) is not list or len(objects) != count:
            raise self.fail(f"the pickled {column} column does not hold {count} items")
        return Items(objects=objects)


def _decode_each(payload: bytes, offsets: list[int], decode: Callable[[bytes], Any]) -> list[Any]:
    cache: dict[bytes, Any] = {}
    out = []
    for start, end in pairwise(offsets):
        chunk = payload[start:end]
        value = cache.get(chunk, cache)
        if value is cache:
            value = cache[chunk] = decode(chunk)
        out.append(value)
    return out


def _keys(reader: _Reader, count: int, decode: bool) -> list[Any]:
    if reader.tag((KEYS_ENCODED, KEYS_STR), "key") == KEYS_ENCODED:
        payload, offsets = reader.chunks(count)
        if not decode:
            return [payload[a:b] for a, b in pairwise(offsets)]
        return [keycodec.decode_key(payload[a:b]) for a, b in pairwise(offsets)]
    (size,) = _U64.unpack(reader.take(_U64.size))
    keys = str(reader.take(size), "utf-8").split("\0")
    if len(keys) != count:
        raise reader.fail(f"{len(keys)} str keys for {count} entries")
    if decode:
        return keys
    head = bytes((keycodec.TAG_STR,))  # the keycodec encoding of a str: tag, length, UTF-8
    return [head + _U32.pack(len(data)) + data for data in (key.encode("utf-8") for key in keys)]


def decode_body(
    body: bytes | memoryview,
    pos: int,
    *,
    name: str,
    user_keys: bool,
    user_keys_pickled: bool,
    timestamps: bool,
    values_pickled: bool,
    decode_namespace: Callable[[bytes], Any] | None,
) -> Columns:
    """Decode the columns that follow the meta (``pos`` is where they start). The flags say
    whether the state has user keys and timestamps, and which item columns may be pickled.
    Without ``decode_namespace``, keys and namespaces stay bytes (keycodec's, and
    ``encode_namespace``'s)."""
    reader = _Reader(body, pos, name)
    n_entries, n_items = _COUNTS.unpack(reader.take(_COUNTS.size))
    keys = _keys(reader, n_entries, decode_namespace is not None)
    namespaces = None
    if reader.tag((NAMESPACES_ENCODED, NAMESPACES_VOID), "namespace") == NAMESPACES_ENCODED:
        payload, offsets = reader.chunks(n_entries)
        if decode_namespace is None:
            namespaces = [payload[a:b] for a, b in pairwise(offsets)]
        else:
            namespaces = _decode_each(payload, offsets, decode_namespace)
    counts = None
    if reader.tag((COUNTS_LISTED, COUNTS_ONE), "count") == COUNTS_LISTED:
        counts = reader.numbers(n_entries).tolist()
        if sum(counts) != n_items:
            raise reader.fail("item counts do not add up")
    elif n_items != n_entries:
        raise reader.fail("one item per entry, but the counts differ")
    user_key_items = None
    if user_keys:
        user_key_items = reader.items(n_items, "user key", pickled_allowed=user_keys_pickled)
    stamps = reader.numbers(n_items, "q").tolist() if timestamps else None
    values = reader.items(n_items, "value", pickled_allowed=values_pickled)
    if reader.pos != len(body):
        raise reader.fail(f"{len(body) - reader.pos} extra bytes")
    return Columns(keys, namespaces, counts, user_key_items, stamps, values)
