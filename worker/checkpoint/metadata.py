"""``_metadata``: the versioned JSON that makes a checkpoint complete and describes it.

It lists every operator (by uid) with its parallelism, max parallelism, keyed-state handles
(one file per subtask with an offset per key group, so a restoring subtask reads only its key
groups) and operator state (source positions, pending sink transactions) per subtask, and
every file it references with its size. Paths are relative to the checkpoint's root, so a
savepoint can be moved.

Keyed state comes in two formats: canonical (:class:`KeyedStateHandle`, every backend, every
savepoint) and native incremental (:class:`IncrementalKeyedStateHandle`, RocksDB checkpoints:
the database files of one subtask, its SST files under ``shared/``). A checkpoint with native
handles is written as metadata version 2, so an older streamjob refuses it instead of
silently restoring without that state; version 1 documents are read as before.

Operator-state elements are stored as JSON when they are JSON values, else as base64 pickle
(``{"$pickle": ...}``): restoring pickled state from an untrusted bucket runs code.
"""

from __future__ import annotations

import base64
import json
import pickle
from dataclasses import dataclass, field
from typing import Any

from streamjob import errors

FORMAT = "streamjob-checkpoint"
VERSION = 1
VERSION_INCREMENTAL = 2
READABLE_VERSIONS = (VERSION, VERSION_INCREMENTAL)


@dataclass(frozen=True)
class KeyedStateHandle:
    subtask: int
    key_group_range: tuple[int, int]
    path: str
    size: int
    #: key group -> (offset, length) inside ``path``; empty key groups are absent
    offsets: dict[int, tuple[int, int]]

    def to_json(self) -> dict[str, Any]:
        return {
            "subtask": self.subtask,
            "key_group_range": list(self.key_group_range),
            "path": self.path,
            "size": self.size,
            "offsets": {str(kg): list(span) for kg, span in sorted(self.offsets.items())},
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> KeyedStateHandle:
        start, end = data["key_group_range"]
        return KeyedStateHandle(
            subtask=int(data["subtask"]),
            key_group_range=(int(start), int(end)),
            path=str(data["path"]),
            size=int(data["size"]),
            offsets={int(kg): (int(o), int(n)) for kg, (o, n) in data["offsets"].items()},
        )


@dataclass(frozen=True)
class StateFile:
    """One file of a native snapshot: where it is stored, its size, its name in the snapshot."""

    path: str
    size: int
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "name": self.name}

    @staticmethod
    def from_json(data: dict[str, Any]) -> StateFile:
        return StateFile(path=str(data["path"]), size=int(data["size"]), name=str(data["name"]))


@dataclass(frozen=True)
class IncrementalKeyedStateHandle:
    """Native keyed state of one subtask (DESIGN.md section 6, incremental format).

    ``shared``: the database's SST files, under unique names in ``shared/``, referenced by
    every later checkpoint that still contains them; ``private``: this checkpoint's own files
    (one tar of the MANIFEST, CURRENT, OPTIONS..., so one request); ``base_checkpoint_id``: the
    completed checkpoint, notified to the subtask, whose uploads this one reused (None: all
    uploaded afresh);
    ``sections``: the operator's own per-key-group sections (timers, window contents) in the
    canonical format, or None.
    """

    subtask: int
    key_group_range: tuple[int, int]
    backend: str
    shared: tuple[StateFile, ...]
    private: tuple[StateFile, ...]
    base_checkpoint_id: int | None = None
    sections: KeyedStateHandle | None = None

    def files(self) -> list[tuple[str, int]]:
        found = [(f.path, f.size) for f in (*self.shared, *self.private)]
        if self.sections is not None:
            found.append((self.sections.path, self.sections.size))
        return found

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files())

    def to_json(self) -> dict[str, Any]:
        return {
            "subtask": self.subtask,
            "key_group_range": list(self.key_group_range),
            "backend": self.backend,
            "base_checkpoint_id": self.base_checkpoint_id,
            "shared": [f.to_json() for f in self.shared],
            "private": [f.to_json() for f in self.private],
            "sections": None if self.sections is None else self.sections.to_json(),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> IncrementalKeyedStateHandle:
        start, end = data["key_group_range"]
        base = data.get("base_checkpoint_id")
        sections = data.get("sections")
        return IncrementalKeyedStateHandle(
            subtask=int(data["subtask"]),
            key_group_range=(int(start), int(end)),
            backend=str(data["backend"]),
            shared=tuple(StateFile.from_json(f) for f in data["shared"]),
            private=tuple(StateFile.from_json(f) for f in data["private"]),
            base_checkpoint_id=None if base is None else int(base),
            sections=None if sections is None else KeyedStateHandle.from_json(sections),
        )


@dataclass(frozen=True)
class OperatorStateEntry:
    """Operator (non-keyed) list state: ``split`` round-robin or ``union`` on restore."""

    mode: str
    per_subtask: list[list[Any]]

    def all_elements(self) -> list[Any]:
        return [element for part in self.per_subtask for element in part]


@dataclass
class OperatorMetadata:
    uid: str
    name: str
    parallelism: int
    max_parallelism: int
    keyed_states: list[dict[str, Any]] = field(default_factory=list)
    keyed_handles: list[KeyedStateHandle] = field(default_factory=list)
    operator_state: dict[str, OperatorStateEntry] = field(default_factory=dict)
    incremental_handles: list[IncrementalKeyedStateHandle] = field(default_factory=list)

    def state_size(self) -> int:
        return sum(h.size for h in self.keyed_handles) + sum(
            h.size for h in self.incremental_handles
        )

    @property
    def has_keyed_state(self) -> bool:
        return bool(self.keyed_handles or self.incremental_handles)


@dataclass
class CheckpointMetadata:
    job_id: str
    checkpoint_id: int
    kind: str  # "checkpoint" | "savepoint"
    timestamp_ms: int
    operators: list[OperatorMetadata]
    graph_fingerprint: str = ""
    duration_ms: int = 0

    def operator(self, uid: str) -> OperatorMetadata | None:
        for op in self.operators:
            if op.uid == uid:
                return op
        return None

    def files(self) -> list[tuple[str, int]]:
        found = {(h.path, h.size) for op in self.operators for h in op.keyed_handles}
        for op in self.operators:
            for handle in op.incremental_handles:
                found.update(handle.files())
        return sorted(found)

    def shared_files(self) -> set[str]:
        """Paths of the ``shared/`` files this checkpoint references."""
        return {f.path for op in self.operators for h in op.incremental_handles for f in h.shared}

    def incremental_floor(self) -> int:
        """The oldest checkpoint a later incremental checkpoint of this job may still reuse
        files of: the oldest base of this one's native handles (each subtask's base only
        moves forward), or this checkpoint itself."""
        bases = [
            self.checkpoint_id if h.base_checkpoint_id is None else h.base_checkpoint_id
            for op in self.operators
            for h in op.incremental_handles
        ]
        return min(bases, default=self.checkpoint_id)

    def total_size(self) -> int:
        return sum(size for _, size in self.files())

    # -- JSON -----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        incremental = any(op.incremental_handles for op in self.operators)
        doc = {
            "format": FORMAT,
            "version": VERSION_INCREMENTAL if incremental else VERSION,
            "job_id": self.job_id,
            "checkpoint_id": self.checkpoint_id,
            "kind": self.kind,
            "timestamp_ms": self.timestamp_ms,
            "duration_ms": self.duration_ms,
            "graph_fingerprint": self.graph_fingerprint,
            "operators": [
                {
                    "uid": op.uid,
                    "name": op.name,
                    "parallelism": op.parallelism,
                    "max_parallelism": op.max_parallelism,
                    "keyed_states": op.keyed_states,
                    "keyed_handles": [h.to_json() for h in op.keyed_handles],
                    "operator_state": {
                        name: {
                            "mode": entry.mode,
                            "per_subtask": [
                                [encode_element(e) for e in part] for part in entry.per_subtask
                            ],
                        }
                        for name, entry in sorted(op.operator_state.items())
                    },
                    **(
                        {"incremental_handles": [h.to_json() for h in op.incremental_handles]}
                        if op.incremental_handles
                        else {}
                    ),
                }
                for op in self.operators
            ],
            "files": [{"path": path, "size": size} for path, size in self.files()],
        }
        return json.dumps(doc, indent=1, sort_keys=False).encode("utf-8")

    @staticmethod
    def from_bytes(data: bytes, *, location: str) -> CheckpointMetadata:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise errors.CheckpointCorruptError(
                f"{location} is not valid checkpoint metadata JSON ({exc}); the file is "
                "corrupt or was not written by streamjob"
            ) from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise errors.CheckpointCorruptError(
                f"{location} is not a streamjob checkpoint (format {doc.get('format')!r})"
                if isinstance(doc, dict)
                else f"{location} is not a streamjob checkpoint"
            )
        if doc.get("version") not in READABLE_VERSIONS:
            raise errors.CheckpointCorruptError(
                f"{location} has metadata version {doc.get('version')}; this streamjob reads "
                f"versions {', '.join(map(str, READABLE_VERSIONS))}: upgrade streamjob to "
                "restore it"
            )
        try:
            return CheckpointMetadata(
                job_id=str(doc["job_id"]),
                checkpoint_id=int(doc["checkpoint_id"]),
                kind=str(doc["kind"]),
                timestamp_ms=int(doc["timestamp_ms"]),
                duration_ms=int(doc.get("duration_ms", 0)),
                graph_fingerprint=str(doc.get("graph_fingerprint", "")),
                operators=[_operator_from_json(op) for op in doc["operators"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.CheckpointCorruptError(
                f"{location} is missing or has a malformed field ({exc!r})"
            ) from exc


def _operator_from_json(op: dict[str, Any]) -> OperatorMetadata:
    return OperatorMetadata(
        uid=str(op["uid"]),
        name=str(op["name"]),
        parallelism=int(op["parallelism"]),
        max_parallelism=int(op["max_parallelism"]),
        keyed_states=list(op.get("keyed_states", [])),
        keyed_handles=[KeyedStateHandle.from_json(h) for h in op.get("keyed_handles", [])],
        incremental_handles=[
            IncrementalKeyedStateHandle.from_json(h) for h in op.get("incremental_handles", [])
        ],
        operator_state={
            name: OperatorStateEntry(
                mode=str(entry["mode"]),
                per_subtask=[[decode_element(e) for e in part] for part in entry["per_subtask"]],
            )
            for name, entry in op.get("operator_state", {}).items()
        },
    )


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items()) and (
            "$pickle" not in value
        )
    return False


def encode_element(value: Any) -> Any:
    if _is_json_value(value):
        return value
    return {"$pickle": base64.b64encode(pickle.dumps(value, protocol=5)).decode("ascii")}


def decode_element(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$pickle"}:
        return pickle.loads(base64.b64decode(value["$pickle"]))
    return value
