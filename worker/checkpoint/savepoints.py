"""Assembling ``_metadata`` from acknowledgements, and savepoint requests.

Savepoints are aligned, canonical and self-contained (their files live in their own directory
and paths are relative to it). An intermediate savepoint commits nothing: its pre-committed
transactions stay pending until the next checkpoint. Stop-with-savepoint ends the job after
the savepoint completes (its transactions are committed, as Flink does for the final one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from streamjob.checkpoint.coordinator import PendingCheckpoint
from streamjob.checkpoint.metadata import (
    CheckpointMetadata,
    OperatorMetadata,
    OperatorStateEntry,
)
from streamjob.checkpoint.snapshotting import SubtaskSnapshot
from streamjob.runtime.events import CheckpointKind, CheckpointOptions
from streamjob.runtime.graph import JobGraph


@dataclass
class SavepointRequest:
    location: str
    stop: bool = False
    drain: bool = False
    #: a regular checkpoint (into the job's own directory) rather than a savepoint
    checkpoint: bool = False
    triggered: bool = False
    checkpoint_id: int | None = None
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def options(self) -> CheckpointOptions:
        if self.checkpoint:
            return CheckpointOptions(aligned=True, stop=self.stop, drain=self.drain)
        return CheckpointOptions(
            kind=CheckpointKind.SAVEPOINT,
            aligned=True,
            target=self.location,
            stop=self.stop,
            drain=self.drain,
        )

    def complete(self, path: str) -> None:
        if not self.done.done():
            self.done.set_result(path)

    def fail(self, reason: str) -> None:
        if not self.done.done():
            from streamjob import errors

            self.done.set_exception(errors.CheckpointError(reason))


def assemble_metadata(
    *, job_id: str, pending: PendingCheckpoint, graph: JobGraph, now_ms: int
) -> CheckpointMetadata:
    by_uid: dict[str, OperatorMetadata] = {}
    for node in graph.nodes.values():
        by_uid[node.uid] = OperatorMetadata(
            uid=node.uid,
            name=node.name,
            parallelism=node.parallelism,
            max_parallelism=node.max_parallelism,
        )
    per_subtask_state: dict[str, dict[str, tuple[str, dict[int, list[object]]]]] = {}
    for snapshot in pending.acks.values():
        assert isinstance(snapshot, SubtaskSnapshot)
        for op in snapshot.operators:
            meta = by_uid[op.uid]
            if op.keyed_states and not meta.keyed_states:
                meta.keyed_states = op.keyed_states
            if op.handle is not None:
                meta.keyed_handles.append(op.handle)
            if op.incremental_handle is not None:
                meta.incremental_handles.append(op.incremental_handle)
            for name, (mode, elements) in op.operator_state.items():
                slot = per_subtask_state.setdefault(op.uid, {}).setdefault(name, (mode, {}))
                slot[1][snapshot.subtask] = list(elements)
    for uid, states in per_subtask_state.items():
        meta = by_uid[uid]
        for name, (mode, parts) in states.items():
            meta.operator_state[name] = OperatorStateEntry(
                mode=mode, per_subtask=[parts.get(i, []) for i in range(meta.parallelism)]
            )
    for meta in by_uid.values():
        meta.keyed_handles.sort(key=lambda h: h.subtask)
        meta.incremental_handles.sort(key=lambda h: h.subtask)
    return CheckpointMetadata(
        job_id=job_id,
        checkpoint_id=pending.checkpoint_id,
        kind=pending.options.kind.value,
        timestamp_ms=pending.timestamp_ms,
        duration_ms=max(0, now_ms - pending.timestamp_ms),
        graph_fingerprint=graph.fingerprint(),
        operators=list(by_uid.values()),
    )
