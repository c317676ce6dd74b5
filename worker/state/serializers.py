"""State serializers: how a state's values become bytes in checkpoints, and a registry by name.

Descriptors (:mod:`streamjob.state.descriptors`) carry a serializer per value (and per user map
key); :mod:`streamjob.state.canonical` writes each state's serializer name and version into the
snapshot and ``_metadata`` records them, so a restore can refuse a changed serializer by name.
Keys and namespaces never go through these: they use :mod:`streamjob.keycodec`.

**Security**: :class:`PickleSerializer` is the default because it takes any Python value. Restoring
pickled state runs code chosen by whoever wrote the bytes: restore only from checkpoint and
savepoint storage you trust (a bucket others can write to is a code-execution hole). Use
:class:`JsonSerializer`, :class:`StrSerializer`, :class:`IntSerializer` or
:class:`BytesSerializer` for state that may come from elsewhere.
"""

from __future__ import annotations

import json
import pickle
from itertools import repeat
from typing import Any, Protocol, runtime_checkable

from streamjob import errors


@runtime_checkable
class TypeSerializer(Protocol):
    """Turns one kind of value into bytes and back.

    ``name`` identifies the encoding in checkpoints; ``version`` changes whenever the bytes a
    serializer writes change. A restore refuses state written under another name or version.
    """

    name: str
    version: int

    def serialize(self, obj: Any) -> bytes: ...

    def deserialize(self, data: bytes) -> Any: ...


class PickleSerializer:
    """Any picklable value (the default). Deserializing runs code: trusted storage only."""

    name = "pickle"
    version = 1
    protocol = 5

    def serialize(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=self.protocol)

    def deserialize(self, data: bytes) -> Any:
        return pickle.loads(data)  # documented: trusted checkpoint storage only


class JsonSerializer:
    """JSON values (dicts, lists, str, numbers, bool, None) as compact UTF-8 JSON.

    Tuples come back as lists and dict keys as strings, as JSON has no other shapes.
    """

    name = "json"
    version = 1

    def serialize(self, obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def deserialize(self, data: bytes) -> Any:
        return json.loads(data.decode("utf-8"))


class BytesSerializer:
    """``bytes`` as they are."""

    name = "bytes"
    version = 1

    def serialize(self, obj: Any) -> bytes:
        if not isinstance(obj, bytes | bytearray | memoryview):
            raise TypeError(f"BytesSerializer takes bytes, got {type(obj).__name__}")
        return bytes(obj)

    def deserialize(self, data: bytes) -> Any:
        return bytes(data)


class StrSerializer:
    """``str`` as UTF-8."""

    name = "str"
    version = 1

    def serialize(self, obj: Any) -> bytes:
        if not isinstance(obj, str):
            raise TypeError(f"StrSerializer takes str, got {type(obj).__name__}")
        return obj.encode("utf-8")

    def deserialize(self, data: bytes) -> Any:
        return bytes(data).decode("utf-8")


class IntSerializer:
    """``int`` of any size: two's complement, big-endian, ``bit_length // 8 + 1`` bytes."""

    name = "int"
    version = 1

    def serialize(self, obj: Any) -> bytes:
        if type(obj) is not int:
            raise TypeError(f"IntSerializer takes int, got {type(obj).__name__}")
        value: int = obj
        return value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)

    def deserialize(self, data: bytes) -> Any:
        return int.from_bytes(data, "big", signed=True)


def serialize_all(serializer: TypeSerializer, objs: list[Any]) -> list[bytes]:
    """``serializer.serialize`` of each object; for pickle without a Python call per object."""
    if type(serializer) is PickleSerializer:
        return list(map(pickle.dumps, objs, repeat(serializer.protocol)))
    return list(map(serializer.serialize, objs))


def deserialize_all(serializer: TypeSerializer, data: list[bytes]) -> list[Any]:
    """``serializer.deserialize`` of each chunk; for pickle without a Python call per chunk."""
    if type(serializer) is PickleSerializer:
        return list(map(pickle.loads, data))  # documented: trusted checkpoint storage only
    return list(map(serializer.deserialize, data))


DEFAULT_SERIALIZER: TypeSerializer = PickleSerializer()

_REGISTRY: dict[str, TypeSerializer] = {}


def register_serializer(serializer: TypeSerializer) -> None:
    """Make ``serializer`` findable by its name (for tools that read checkpoints).

    Registering a different serializer class under a taken name is refused.
    """
    if not isinstance(serializer, TypeSerializer):
        raise TypeError(
            f"{serializer!r} is not a TypeSerializer: it needs name, version, serialize(obj) "
            "and deserialize(data)"
        )
    known = _REGISTRY.get(serializer.name)
    if known is not None and type(known) is not type(serializer):
        raise errors.StateError(
            f"serializer name {serializer.name!r} is taken by {type(known).__qualname__}; "
            f"give {type(serializer).__qualname__} another name"
        )
    _REGISTRY[serializer.name] = serializer


def get_serializer(name: str) -> TypeSerializer:
    """The registered serializer called ``name``; :class:`errors.StateError` if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise errors.StateError(
            f"no serializer named {name!r} is registered (known: {sorted(_REGISTRY)}); "
            "import the module that defines it and call register_serializer()"
        ) from None


def registered_names() -> list[str]:
    return sorted(_REGISTRY)


for _builtin in (
    DEFAULT_SERIALIZER,
    JsonSerializer(),
    BytesSerializer(),
    StrSerializer(),
    IntSerializer(),
):
    register_serializer(_builtin)
