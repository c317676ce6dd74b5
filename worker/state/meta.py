"""What a checkpoint records about each state: :class:`StateKind` and :class:`StateMetaInfo`.

Descriptors produce a :class:`StateMetaInfo`; the canonical format
(:mod:`streamjob.state.canonical`) writes it at the head of every state section, and
``_metadata`` records ``backend.state_metadata()``. :func:`incompatibilities` is the one rule a
restore applies: the kind and the serializers (name and version) must not change. A TTL may be
added, changed or removed (restored entries without a timestamp get the restore time).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from streamjob.duration import Duration
from streamjob.state import serializers
from streamjob.state import ttl as state_ttl


class StateKind(enum.Enum):
    """The five keyed state kinds; the value is the name written into checkpoints."""

    VALUE = "value"
    LIST = "list"
    MAP = "map"
    REDUCING = "reducing"
    AGGREGATING = "aggregating"


@dataclass(frozen=True, slots=True)
class SerializerRef:
    """A serializer as checkpoints name it."""

    name: str
    version: int

    @classmethod
    def of(cls, serializer: serializers.TypeSerializer) -> SerializerRef:
        return cls(serializer.name, serializer.version)

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True, slots=True)
class StateMetaInfo:
    """Name, kind, serializers and TTL of one registered state.

    ``key_serializer`` is the serializer of a MapState's user keys (``None`` for other kinds).
    """

    name: str
    kind: StateKind
    value_serializer: SerializerRef
    key_serializer: SerializerRef | None = None
    ttl: state_ttl.StateTtlConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape recorded in ``_metadata`` and in canonical state sections."""
        key = self.key_serializer
        return {
            "name": self.name,
            "kind": self.kind.value,
            "value_serializer": [self.value_serializer.name, self.value_serializer.version],
            "key_serializer": None if key is None else [key.name, key.version],
            "ttl": None if self.ttl is None else self.ttl.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StateMetaInfo:
        try:
            value_name, value_version = data["value_serializer"]
            key = data.get("key_serializer")
            return cls(
                name=str(data["name"]),
                kind=StateKind(data["kind"]),
                value_serializer=SerializerRef(str(value_name), int(value_version)),
                key_serializer=None if key is None else SerializerRef(str(key[0]), int(key[1])),
                ttl=_ttl_from_dict(data.get("ttl")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed state meta info {data!r}: {exc}") from exc


def _ttl_from_dict(data: dict[str, Any] | None) -> state_ttl.StateTtlConfig | None:
    if data is None:
        return None
    return state_ttl.StateTtlConfig(
        ttl=Duration(int(data["ttl_ms"])),
        update_type=state_ttl.UpdateType[data["update_type"]],
        state_visibility=state_ttl.StateVisibility[data["state_visibility"]],
        cleanup_in_full_snapshot=bool(data["cleanup_full_snapshot"]),
    )


def incompatibilities(current: StateMetaInfo, restored: StateMetaInfo) -> list[str]:
    """Why state written as ``restored`` cannot be read as ``current`` (empty if it can)."""
    problems: list[str] = []
    if current.kind is not restored.kind:
        problems.append(
            f"kind changed: the checkpoint holds a {restored.kind.value} state, the job now "
            f"registers a {current.kind.value} state"
        )
    if current.value_serializer != restored.value_serializer:
        problems.append(
            f"value serializer changed: checkpoint {restored.value_serializer}, "
            f"job {current.value_serializer}"
        )
    if current.key_serializer != restored.key_serializer and current.kind is restored.kind:
        problems.append(
            f"map key serializer changed: checkpoint {restored.key_serializer}, "
            f"job {current.key_serializer}"
        )
    return problems


def incompatibility_error_text(current: StateMetaInfo, restored: StateMetaInfo) -> str | None:
    """One message naming the state and every mismatch, or ``None`` when compatible."""
    problems = incompatibilities(current, restored)
    if not problems:
        return None
    return (
        f"state {current.name!r} cannot be restored: {'; '.join(problems)}. Keep the state's "
        "kind and serializers, or give the new state another name (and restore with "
        "allow_non_restored_state) to start it empty"
    )
