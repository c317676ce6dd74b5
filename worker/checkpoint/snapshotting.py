"""Taking a task's part of a checkpoint: a short synchronous snapshot, then an async upload.

Steps for barrier *n* (all inputs aligned, or triggered at a source):

1. synchronously, per operator of the chain: serialize keyed state key group by key group
   into one buffer with an offset per key group — or, for a backend with native snapshots
   (RocksDB) in an incremental checkpoint, take a local native checkpoint and serialize only the
   operator's own sections (timers...) per key group — and collect operator state (source
   positions, pending sink transactions — the sinks' pre-commit happens here);
2. forward barrier *n* downstream (the task then goes on with records);
3. in a thread, upload each operator's buffer as one file (``chk-n/{uid}-{subtask}.kg``), and
   the native checkpoint's files not uploaded before (:mod:`streamjob.checkpoint.incremental`);
4. acknowledge to the coordinator with the handles (or decline with the error).

Savepoints are always canonical. On ``notify_checkpoint_complete`` every operator is told
(sinks commit), the incremental uploads of that checkpoint become the base of later ones, and a
task that has finished its input learns that its final checkpoint is done (FLIP-147) and may
end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamjob.checkpoint import incremental, layout
from streamjob.checkpoint.barriers import BarrierAligner
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import IncrementalKeyedStateHandle, KeyedStateHandle
from streamjob.checkpoint.operator_state import keyed_blob, snapshot_operator_state
from streamjob.runtime.events import CheckpointBarrier, CheckpointKind
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
    incremental_handle: IncrementalKeyedStateHandle | None = None


@dataclass
class PreparedOperator:
    """What the synchronous part leaves for the upload: canonical key-group blobs (for a native
    snapshot, the operator's own sections only), and the native checkpoint with its base."""

    snap: OperatorSnapshot
    buffer: bytearray
    offsets: dict[int, tuple[int, int]]
    native: incremental.NativeCheckpoint | None = None
    base: incremental.UploadBase | None = None
    backend_format: str = ""

    def discard(self) -> None:
        if self.native is not None:
            self.native.discard()


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
    """The checkpoint side of one task; installed by the job runner.

    ``incremental``: take native snapshots of backends that have them (RocksDB) in checkpoints
    (savepoints stay canonical); ``trackers`` hold their uploads per operator uid.
    """

    trackers: dict[str, incremental.UploadTracker]

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
        incremental: bool = True,
    ) -> None:
        self.task = task
        self.incremental = incremental
        self.trackers = {}
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
            prepared = self._snapshot(barrier)
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

    def _snapshot(self, barrier: CheckpointBarrier) -> list[PreparedOperator]:
        checkpoint_id = barrier.checkpoint_id
        native_allowed = self.incremental and barrier.options.kind is CheckpointKind.CHECKPOINT
        out: list[PreparedOperator] = []
        try:
            for op in self.task.operators:
                prepared = PreparedOperator(OperatorSnapshot(uid=op.ctx.uid), bytearray(), {})
                out.append(prepared)
                if op.is_keyed:
                    self._snapshot_keyed(op, prepared, native_allowed, checkpoint_id)
                prepared.snap.operator_state = snapshot_operator_state(op, checkpoint_id)
        except BaseException:
            for prepared in out:
                prepared.discard()
            raise
        return out

    def _snapshot_keyed(
        self, op: Any, prepared: PreparedOperator, native_allowed: bool, checkpoint_id: int
    ) -> None:
        backend = op.backend
        prepared.snap.keyed_states = [m.to_dict() for m in backend.state_metadata()]
        kg_range = op.ctx.key_group_range
        assert kg_range is not None
        native = incremental.native_backend(op) if native_allowed else None
        if native is not None:
            tracker = self.trackers.setdefault(op.ctx.uid, incremental.UploadTracker())
            prepared.base = tracker.base
            prepared.backend_format = native.native_format
            prepared.native = native.native_checkpoint(checkpoint_id)
            if getattr(op, "snapshot_keyed_sections", None) is None:
                return  # nothing but the backend's state, which the native files hold
            with native.without_state_in_blobs():
                self._add_blobs(op, prepared, kg_range)
            return
        self._add_blobs(op, prepared, kg_range)

    @staticmethod
    def _add_blobs(op: Any, prepared: PreparedOperator, kg_range: Any) -> None:
        buffer = prepared.buffer
        for kg in kg_range:
            blob = keyed_blob(op, kg)
            prepared.offsets[kg] = (len(buffer), len(blob))
            buffer += blob

    def _upload(
        self, barrier: CheckpointBarrier, prepared: list[PreparedOperator]
    ) -> SubtaskSnapshot:
        try:
            return self._upload_all(barrier, prepared)
        finally:
            for operator in prepared:
                operator.discard()

    def _upload_all(
        self, barrier: CheckpointBarrier, prepared: list[PreparedOperator]
    ) -> SubtaskSnapshot:
        storage = self.storage_for(barrier)
        cid = barrier.checkpoint_id
        subtask = self.task.subtask_index
        written = 0
        for operator in prepared:
            snap = operator.snap
            if not operator.offsets and operator.native is None:
                continue
            op = next(o for o in self.task.operators if o.ctx.uid == snap.uid)
            kg_range = op.ctx.key_group_range
            assert kg_range is not None
            self.faults.hit("mid_upload", task=self.task.name, checkpoint_id=cid)
            handle = None
            if operator.offsets:
                path = layout.state_file(snap.uid, subtask, cid)
                storage.put(path, bytes(operator.buffer))
                written += len(operator.buffer)
                handle = KeyedStateHandle(
                    subtask=subtask,
                    key_group_range=(kg_range.start, kg_range.end),
                    path=path,
                    size=len(operator.buffer),
                    offsets=operator.offsets,
                )
            if operator.native is None:
                snap.handle = handle
                continue
            assert operator.base is not None
            snap.incremental_handle, native_written = incremental.upload(
                storage,
                operator.native,
                target=incremental.NativeUpload(
                    uid=snap.uid,
                    subtask=subtask,
                    checkpoint_id=cid,
                    key_group_range=(kg_range.start, kg_range.end),
                    backend=operator.backend_format,
                ),
                base=operator.base,
                sections=handle,
            )
            written += native_written
        return SubtaskSnapshot(
            self.task.vertex_id,
            self.task.subtask_index,
            [operator.snap for operator in prepared],
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
        for op in snapshot.operators:
            if op.incremental_handle is not None:
                tracker = self.trackers.setdefault(op.uid, incremental.UploadTracker())
                tracker.uploaded(cid, op.incremental_handle)
        try:
            self.faults.hit("before_ack", task=self.task.name, checkpoint_id=cid)
        except Exception as fault:  # a crash here: fail the task, never acknowledge
            self.task.fail(fault)
            return
        self.acknowledge(cid, self.key, snapshot)

    def notify_complete(self, checkpoint_id: int) -> None:
        task = self.task
        for tracker in self.trackers.values():
            tracker.notify_complete(checkpoint_id)
        for op in task.operators:
            op.notify_checkpoint_complete(checkpoint_id)
            self.faults.hit("during_notify", task=task.name, checkpoint_id=checkpoint_id)
        if any(c <= checkpoint_id for c in self.after_end_of_input):
            task.final_checkpoint_done = True
            task.wake()

    def seed_incremental(
        self, bases: dict[str, IncrementalKeyedStateHandle], checkpoint_id: int
    ) -> None:
        """After a restore from checkpoint ``checkpoint_id``: the restored databases hold these
        handles' shared files, so later checkpoints reuse their uploads."""
        for uid, handle in bases.items():
            self.trackers.setdefault(uid, incremental.UploadTracker()).seed(checkpoint_id, handle)

    def notify_aborted(self, checkpoint_id: int) -> None:
        for tracker in self.trackers.values():
            tracker.notify_aborted(checkpoint_id)
        for op in self.task.operators:
            op.notify_checkpoint_aborted(checkpoint_id)
