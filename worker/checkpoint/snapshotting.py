"""Taking a task's part of a checkpoint: a short synchronous snapshot, then an async upload.

Steps for barrier *n* (all inputs aligned, or triggered at a source):

1. synchronously, per operator of the chain: serialize keyed state key group by key group
   into one buffer with an offset per key group, and collect operator state (source
   positions, pending sink transactions — the sinks' pre-commit happens here);
2. forward barrier *n* downstream (the task then goes on with records);
3. in a thread, upload each operator's buffer as one file (``chk-n/{uid}-{subtask}.kg``);
4. acknowledge to the coordinator with the handles (or decline with the error).

On ``notify_checkpoint_complete`` every operator is told (sinks commit), and a task that has
finished its input learns that its final checkpoint is done (FLIP-147) and may end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamjob.checkpoint import layout
from streamjob.checkpoint.barriers import BarrierAligner
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import KeyedStateHandle
from streamjob.checkpoint.operator_state import keyed_blob, snapshot_operator_state
from streamjob.runtime.events import CheckpointBarrier
from streamjob.storage.base import CheckpointStorage

if TYPE_CHECKING:
    from streamjob.runtime.task import Task

log = logging.getLogger(__name__)


@dataclass
class OperatorSnapshot:
    uid: str
    keyed_states: list[dict[str, Any]] = field(default_factory=list)
    handle: KeyedStateHandle | None = None
    operator_state: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)


@dataclass
class SubtaskSnapshot:
    vertex_id: int
    subtask: int
    operators: list[OperatorSnapshot]
    sync_ms: float = 0.0
    bytes_written: int = 0


StorageResolver = Callable[[CheckpointBarrier], CheckpointStorage]
AckCallback = Callable[[int, tuple[int, int], SubtaskSnapshot], None]
DeclineCallback = Callable[[int, tuple[int, int], BaseException], None]


class TaskCheckpointer:
    """The checkpoint side of one task; installed by the job runner."""

    def __init__(
        self,
        task: Task,
        *,
        exactly_once: bool,
        storage_for: StorageResolver,
        upload_executor: Executor,
        acknowledge: AckCallback,
        decline: DeclineCallback,
        faults: FaultInjector | None = None,
    ) -> None:
        self.task = task
        self.storage_for = storage_for
        self.executor = upload_executor
        self.acknowledge = acknowledge
        self.decline = decline
        self.faults = faults or FaultInjector()
        self.aligner = BarrierAligner(self.perform, exactly_once=exactly_once)
        self.after_end_of_input: set[int] = set()
        self.uploads: set[asyncio.Future[Any]] = set()
        task.barrier_handler = self.aligner
        task.checkpointer = self

    @property
    def key(self) -> tuple[int, int]:
        return (self.task.vertex_id, self.task.subtask_index)

    # -- called on the task loop ------------------------------------------------------------
    def trigger_at_source(self, barrier: CheckpointBarrier) -> None:
        self.aligner.last_completed_id = barrier.checkpoint_id
        self.perform(self.task, barrier)

    def perform(self, task: Task, barrier: CheckpointBarrier) -> None:
        import time

        started = time.perf_counter()
        cid = barrier.checkpoint_id
        try:
            prepared = self._snapshot(cid)
        except Exception as exc:
            log.exception("%s: snapshot of checkpoint %d failed", task.name, cid)
            self.decline(cid, self.key, exc)
            return
        if task.end_of_input:
            self.after_end_of_input.add(cid)
        task.broadcast_event(barrier)
        sync_ms = (time.perf_counter() - started) * 1000
        self.faults.hit("after_snapshot", task=task.name, checkpoint_id=cid)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, self._upload, barrier, prepared)
        self.uploads.add(future)
        future.add_done_callback(lambda f: self._uploaded(f, cid, sync_ms))

    def _snapshot(
        self, checkpoint_id: int
    ) -> list[tuple[OperatorSnapshot, bytearray, dict[int, tuple[int, int]]]]:
        task = self.task
        out = []
        for op in task.operators:
            snap = OperatorSnapshot(uid=op.ctx.uid)
            buffer = bytearray()
            offsets: dict[int, tuple[int, int]] = {}
            if op.is_keyed:
                backend = op.backend  # type: ignore[attr-defined]
                snap.keyed_states = [m.to_dict() for m in backend.state_metadata()]
                kg_range = op.ctx.key_group_range
                assert kg_range is not None
                for kg in kg_range:
                    blob = keyed_blob(op, kg)
                    offsets[kg] = (len(buffer), len(blob))
                    buffer += blob
            snap.operator_state = snapshot_operator_state(op, checkpoint_id)
            out.append((snap, buffer, offsets))
        return out

    def _upload(
        self,
        barrier: CheckpointBarrier,
        prepared: list[tuple[OperatorSnapshot, bytearray, dict[int, tuple[int, int]]]],
    ) -> SubtaskSnapshot:
        storage = self.storage_for(barrier)
        cid = barrier.checkpoint_id
        written = 0
        for snap, buffer, offsets in prepared:
            if not offsets:
                continue
            path = layout.state_file(snap.uid, self.task.subtask_index, cid)
            self.faults.hit("mid_upload", task=self.task.name, checkpoint_id=cid)
            storage.put(path, bytes(buffer))
            written += len(buffer)
            op = next(o for o in self.task.operators if o.ctx.uid == snap.uid)
            kg_range = op.ctx.key_group_range
            assert kg_range is not None
            snap.handle = KeyedStateHandle(
                subtask=self.task.subtask_index,
                key_group_range=(kg_range.start, kg_range.end),
                path=path,
                size=len(buffer),
                offsets=offsets,
            )
        return SubtaskSnapshot(
            self.task.vertex_id,
            self.task.subtask_index,
            [snap for snap, _, _ in prepared],
            bytes_written=written,
        )

    def _uploaded(self, future: asyncio.Future[SubtaskSnapshot], cid: int, sync_ms: float) -> None:
        self.uploads.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.warning("%s: upload of checkpoint %d failed: %s", self.task.name, cid, exc)
            self.decline(cid, self.key, exc)
            return
        snapshot = future.result()
        snapshot.sync_ms = sync_ms
        try:
            self.faults.hit("before_ack", task=self.task.name, checkpoint_id=cid)
        except Exception as fault:  # a crash here: fail the task, never acknowledge
            self.task.fail(fault)
            return
        self.acknowledge(cid, self.key, snapshot)

    def notify_complete(self, checkpoint_id: int) -> None:
        task = self.task
        for op in task.operators:
            op.notify_checkpoint_complete(checkpoint_id)
            self.faults.hit("during_notify", task=task.name, checkpoint_id=checkpoint_id)
        if any(c <= checkpoint_id for c in self.after_end_of_input):
            task.final_checkpoint_done = True
            task.wake()

    def notify_aborted(self, checkpoint_id: int) -> None:
        for op in self.task.operators:
            op.notify_checkpoint_aborted(checkpoint_id)
