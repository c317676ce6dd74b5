"""Taking a task's part of a checkpoint: a short synchronous part, then the rest off the barrier.

Steps for barrier *n* (all inputs aligned, or triggered at a source):

1. synchronously, per operator of the chain, with O(key groups) work for hashmap state:
   * hashmap keyed state: take the states' meta info and mark every key group pending,
     copy-on-write (:mod:`streamjob.checkpoint.copy_on_write`);
   * a backend with native snapshots (RocksDB) in an incremental checkpoint: take a local
     native checkpoint and serialize only the operator's own sections (timers...) per key
     group; any other backend (RocksDB in a savepoint): serialize its key groups now;
   * operator state (source positions, pending sink transactions: the sinks' pre-commit
     happens here);
2. forward barrier *n* downstream (the task then goes on with records);
3. on the task's loop, between batches or just before a record, timer or window changes one,
   serialize the pending key groups (as they were at the barrier);
4. in a thread, upload each operator's key groups as one file (``chk-n/{uid}-{subtask}.kg``,
   its parts joined once there), and the native checkpoint's files not uploaded before
   (:mod:`streamjob.checkpoint.incremental`);
5. acknowledge to the coordinator with the handles (or decline with the error).

Checkpoints, savepoints and the final checkpoint after end of input (FLIP-147) all take the
same path; savepoints are always canonical. A barrier that arrives while the previous
snapshot's key groups are still pending (only possible after that checkpoint was aborted:
max concurrent 1) finishes them first. On ``notify_checkpoint_complete`` every operator is told
(sinks commit), the incremental uploads of that checkpoint become the base of later ones, and a
task that has finished its input learns that its final checkpoint is done (FLIP-147) and may
end. ``SubtaskSnapshot.sync_ms`` is step 1 (barrier in to barrier out), ``snapshot_ms`` steps 1
to 3 (barrier in to the last key group serialized).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamjob.checkpoint import copy_on_write, incremental, layout
from streamjob.checkpoint.barriers import BarrierAligner
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import IncrementalKeyedStateHandle, KeyedStateHandle
from streamjob.checkpoint.operator_state import keyed_blob_parts, snapshot_operator_state
from streamjob.runtime.events import CheckpointBarrier, CheckpointKind
from streamjob.state import canonical_columns
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
    """What the snapshot leaves for the upload: canonical key-group blobs as parts, with each
    key group's ``(offset, length)`` in their concatenation (for a native snapshot, the
    operator's own sections only), and the native checkpoint with its base."""

    snap: OperatorSnapshot
    parts: list[canonical_columns.Part] = field(default_factory=list)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    size: int = 0
    native: incremental.NativeCheckpoint | None = None
    base: incremental.UploadBase | None = None
    backend_format: str = ""
    #: key groups still to serialize, copy-on-write (None: all done at the barrier)
    pending: copy_on_write.KeyGroupSnapshot | None = None

    def add_blob(self, key_group: int, parts: list[canonical_columns.Part]) -> None:
        length = sum(map(len, parts))
        self.offsets[key_group] = (self.size, length)
        self.parts.extend(parts)
        self.size += length

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
    #: barrier in to the last key group serialized (``sync_ms`` when all was done at once)
    snapshot_ms: float = 0.0


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
        #: the copy-on-write key groups of the last barrier, while any is pending
        self.in_progress: copy_on_write.CopyOnWriteSnapshot | None = None
        self._in_progress_prepared: list[PreparedOperator] = []
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
        started = time.perf_counter()
        cid = barrier.checkpoint_id
        if self.in_progress is not None:  # the previous snapshot's key groups come first
            self.in_progress.complete_now()
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
        pending = [p.pending for p in prepared if p.pending is not None]
        if not pending:
            self._start_upload(barrier, prepared, sync_ms, sync_ms)
            return

        def serialized(snapshot: copy_on_write.CopyOnWriteSnapshot) -> None:
            self._serialized(snapshot, barrier, prepared, started, sync_ms)

        self.in_progress = copy_on_write.CopyOnWriteSnapshot(cid, pending, serialized)
        self._in_progress_prepared = prepared
        task.snapshot_work = self.in_progress

    def _serialized(
        self,
        snapshot: copy_on_write.CopyOnWriteSnapshot,
        barrier: CheckpointBarrier,
        prepared: list[PreparedOperator],
        started: float,
        sync_ms: float,
    ) -> None:
        """Every pending key group is serialized (or one failed): upload, or decline."""
        if self.in_progress is snapshot:
            self.in_progress = None
            self._in_progress_prepared = []
        if self.task.snapshot_work is snapshot:
            self.task.snapshot_work = None
        failure = snapshot.failure
        if failure is not None:
            for operator in prepared:
                operator.discard()
            self.decline(barrier.checkpoint_id, self.key, failure)
            return
        for operator in prepared:
            keyed = operator.pending
            if keyed is not None:
                operator.pending = None
                for kg in sorted(keyed.blobs):
                    operator.add_blob(kg, keyed.blobs[kg])
                keyed.blobs.clear()
        snapshot_ms = (time.perf_counter() - started) * 1000
        self._start_upload(barrier, prepared, sync_ms, snapshot_ms)

    def _start_upload(
        self,
        barrier: CheckpointBarrier,
        prepared: list[PreparedOperator],
        sync_ms: float,
        snapshot_ms: float,
    ) -> None:
        cid = barrier.checkpoint_id
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, self._upload, barrier, prepared)
        self.uploads.add(future)
        future.add_done_callback(lambda f: self._uploaded(f, cid, sync_ms, snapshot_ms))

    def _snapshot(self, barrier: CheckpointBarrier) -> list[PreparedOperator]:
        checkpoint_id = barrier.checkpoint_id
        native_allowed = self.incremental and barrier.options.kind is CheckpointKind.CHECKPOINT
        out: list[PreparedOperator] = []
        try:
            for op in self.task.operators:
                prepared = PreparedOperator(OperatorSnapshot(uid=op.ctx.uid))
                out.append(prepared)
                if op.is_keyed:
                    self._snapshot_keyed(op, prepared, native_allowed, checkpoint_id)
                prepared.snap.operator_state = snapshot_operator_state(op, checkpoint_id)
        except BaseException:
            for prepared in out:
                prepared.discard()
                if prepared.pending is not None:
                    prepared.pending.abandon()
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
        if getattr(op, "guard_key_groups", None) is not None:
            keyed = copy_on_write.KeyGroupSnapshot(op, list(kg_range))
            if keyed.start():
                prepared.pending = keyed
                return
        self._add_blobs(op, prepared, kg_range)

    @staticmethod
    def _add_blobs(op: Any, prepared: PreparedOperator, kg_range: Any) -> None:
        for kg in kg_range:
            prepared.add_blob(kg, keyed_blob_parts(op, kg))

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
                data = b"".join(operator.parts)  # one copy; the GIL is released for large joins
                operator.parts = []
                assert len(data) == operator.size
                storage.put(path, data)
                written += len(data)
                handle = KeyedStateHandle(
                    subtask=subtask,
                    key_group_range=(kg_range.start, kg_range.end),
                    path=path,
                    size=len(data),
                    offsets=operator.offsets,
                )
                del data
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

    def _uploaded(
        self,
        future: asyncio.Future[SubtaskSnapshot],
        cid: int,
        sync_ms: float,
        snapshot_ms: float,
    ) -> None:
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
        snapshot.snapshot_ms = snapshot_ms
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
        snapshot = self.in_progress
        if snapshot is not None and snapshot.checkpoint_id == checkpoint_id:
            snapshot.abandon()  # no upload follows, nor an acknowledgement
            self.in_progress = None
            if self.task.snapshot_work is snapshot:
                self.task.snapshot_work = None
            for operator in self._in_progress_prepared:
                operator.discard()
            self._in_progress_prepared = []
        for tracker in self.trackers.values():
            tracker.notify_aborted(checkpoint_id)
        for op in self.task.operators:
            op.notify_checkpoint_aborted(checkpoint_id)
