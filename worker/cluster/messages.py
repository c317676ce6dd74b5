"""Messages between JobManager and TaskManagers (pure: dataclasses <-> JSON-able dicts).

Every message carries the JobManager's ``epoch`` (new on every JobManager start) and the
deployment ``attempt``; a receiver drops anything stale (fencing, DESIGN.md section 4).
Snapshots travel as JSON with operator-state elements encoded like ``_metadata`` does (JSON
values as they are, anything else as base64 pickle).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from streamjob.checkpoint.metadata import (
    IncrementalKeyedStateHandle,
    KeyedStateHandle,
    decode_element,
    encode_element,
)
from streamjob.checkpoint.snapshotting import OperatorSnapshot, SubtaskSnapshot
from streamjob.runtime.events import CheckpointBarrier, CheckpointKind, CheckpointOptions


@dataclass(frozen=True)
class Registration:
    tm_id: str
    nonce: str
    pod_uid: str
    data_host: str
    data_port: int
    rest_url: str
    slots: int = 1


@dataclass(frozen=True)
class Deployment:
    """What a TaskManager needs to run its share of attempt ``attempt``."""

    epoch: str
    attempt: int
    job_id: str
    job_ref: str
    job_args: list[str]
    parallelism: int
    max_parallelism: int | None
    #: "vertex:subtask" -> tm_id, for every subtask of the job
    placement: dict[str, str]
    #: tm_id -> [host, data port]
    addresses: dict[str, list[Any]]
    checkpoint_dir: str | None
    checkpointing: bool
    exactly_once: bool
    state_backend: str
    #: where to restore from (a chk-N directory of this job or a savepoint), or None
    restore_path: str | None
    graph_fingerprint: str
    batch_size: int = 1024
    credits: int = 4
    adopted_max_parallelism: dict[str, int] = field(default_factory=dict)
    #: native (RocksDB) incremental checkpoints; the JobManager runs the shared-file registry
    incremental: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Deployment:
        return Deployment(**data)


def task_key_text(vertex: int, subtask: int) -> str:
    return f"{vertex}:{subtask}"


def parse_task_key(text: str) -> tuple[int, int]:
    vertex, subtask = text.split(":")
    return int(vertex), int(subtask)


def barrier_to_json(barrier: CheckpointBarrier) -> dict[str, Any]:
    o = barrier.options
    return {
        "checkpoint_id": barrier.checkpoint_id,
        "timestamp": barrier.timestamp,
        "kind": o.kind.value,
        "aligned": o.aligned,
        "target": o.target,
        "stop": o.stop,
        "drain": o.drain,
    }


def barrier_from_json(data: dict[str, Any]) -> CheckpointBarrier:
    return CheckpointBarrier(
        int(data["checkpoint_id"]),
        int(data["timestamp"]),
        CheckpointOptions(
            kind=CheckpointKind(data["kind"]),
            aligned=bool(data["aligned"]),
            target=data.get("target"),
            stop=bool(data.get("stop", False)),
            drain=bool(data.get("drain", False)),
        ),
    )


def snapshot_to_json(snapshot: SubtaskSnapshot) -> dict[str, Any]:
    return {
        "vertex_id": snapshot.vertex_id,
        "subtask": snapshot.subtask,
        "sync_ms": snapshot.sync_ms,
        "bytes_written": snapshot.bytes_written,
        "operators": [
            {
                "uid": op.uid,
                "keyed_states": op.keyed_states,
                "handle": None if op.handle is None else op.handle.to_json(),
                "incremental_handle": None
                if op.incremental_handle is None
                else op.incremental_handle.to_json(),
                "operator_state": {
                    name: [mode, [encode_element(e) for e in elements]]
                    for name, (mode, elements) in op.operator_state.items()
                },
            }
            for op in snapshot.operators
        ],
    }


def snapshot_from_json(data: dict[str, Any]) -> SubtaskSnapshot:
    return SubtaskSnapshot(
        vertex_id=int(data["vertex_id"]),
        subtask=int(data["subtask"]),
        sync_ms=float(data.get("sync_ms", 0.0)),
        bytes_written=int(data.get("bytes_written", 0)),
        operators=[
            OperatorSnapshot(
                uid=op["uid"],
                keyed_states=list(op["keyed_states"]),
                handle=None if op["handle"] is None else KeyedStateHandle.from_json(op["handle"]),
                incremental_handle=None
                if op.get("incremental_handle") is None
                else IncrementalKeyedStateHandle.from_json(op["incremental_handle"]),
                operator_state={
                    name: (mode, [decode_element(e) for e in elements])
                    for name, (mode, elements) in op["operator_state"].items()
                },
            )
            for op in data["operators"]
        ],
    )
