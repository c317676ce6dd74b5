"""Deserializers for the source and serializers for the sink: bytes, str, JSON, or a function.

A deserializer turns a record's value (``bytes``, or ``None`` for a tombstone) into the value a
job sees; ``"bytes"``, ``"str"`` (UTF-8) and ``"json"`` are built in, any callable is taken as
is. A serializer turns a value into ``bytes`` (``None`` stays ``None``: a tombstone); ``str``
is encoded as UTF-8, ``"json"`` dumps compactly. :class:`KafkaRecord` is what a source emits
with ``with_metadata=True``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from streamjob import errors

Deserializer = Callable[[bytes | None], Any]
Serializer = Callable[[Any], bytes | None]


@dataclasses.dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: Any
    headers: Any = None


def _as_bytes(value: bytes | None) -> bytes | None:
    return value


def _as_str(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8")


def _from_json(value: bytes | None) -> Any:
    return None if value is None else json.loads(value)


_DESERIALIZERS: dict[str, Deserializer] = {"bytes": _as_bytes, "str": _as_str, "json": _from_json}


def deserializer(spec: str | Deserializer) -> Deserializer:
    if callable(spec):
        return spec
    if spec in _DESERIALIZERS:
        return _DESERIALIZERS[spec]
    raise errors.JobDefinitionError(
        f"unknown Kafka deserializer {spec!r}: use 'bytes', 'str', 'json' or a function "
        "taking the value's bytes (None for a tombstone)"
    )


def _to_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(
        f"cannot send {type(value).__name__} {value!r:.80} to Kafka as bytes: give the sink a "
        "serializer ('json', str, or a function returning bytes)"
    )


def _to_json(value: Any) -> bytes | None:
    return None if value is None else json.dumps(value, separators=(",", ":")).encode("utf-8")


def _str_to_bytes(value: Any) -> bytes | None:
    return None if value is None else str(value).encode("utf-8")


_SERIALIZERS: dict[Any, Serializer] = {"bytes": _to_bytes, "json": _to_json, "str": _str_to_bytes}


def serializer(spec: str | Serializer | None) -> Serializer:
    if spec is None:
        return _to_bytes
    if isinstance(spec, str):
        if spec in _SERIALIZERS:
            return _SERIALIZERS[spec]
        raise errors.JobDefinitionError(
            f"unknown Kafka serializer {spec!r}: use 'bytes', 'str', 'json' or a function "
            "returning bytes"
        )
    if spec is str:  # type: ignore[comparison-overlap]
        return _str_to_bytes  # type: ignore[unreachable]
    if callable(spec):
        return spec
    raise errors.JobDefinitionError(f"a Kafka serializer must be callable, got {spec!r}")
