"""The checkpoint coordinator: a pure state machine with an injected clock (no I/O).

Protocol (DESIGN.md section 6), the I/O being done by its caller (the job runner):

1. ``maybe_trigger(now)`` starts checkpoint *n* when the interval and the minimum pause have
   passed and none is pending (max concurrent 1); the caller tells the sources to emit barrier
   *n*. ``trigger_savepoint`` does the same on demand.
2. Each task ``acknowledge`` s with its state handles once it has snapshotted and uploaded.
3. When every expected task acknowledged, the pending checkpoint is ``ready``; the caller writes
   ``_metadata`` last, with put-if-absent (the commit point), then calls ``complete`` and
   notifies the tasks. A lost put-if-absent race means ``abort``: nobody is notified.
4. ``decline``, a timeout or a failed write abort the checkpoint; more consecutive failures
   than ``tolerable_failures`` fail the job (Flink's default tolerates none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from streamjob import errors
from streamjob.checkpoint.config import CheckpointConfig
from streamjob.runtime.events import CheckpointKind, CheckpointOptions

TaskKey = tuple[int, int]  # (vertex id, subtask index)


class PendingState(Enum):
    IN_PROGRESS = "in_progress"
    READY = "ready"
    COMPLETED = "completed"
    ABORTED = "aborted"


@dataclass
class PendingCheckpoint:
    checkpoint_id: int
    timestamp_ms: int
    options: CheckpointOptions
    expected: set[TaskKey]
    acks: dict[TaskKey, Any] = field(default_factory=dict)
    state: PendingState = PendingState.IN_PROGRESS
    failure: str | None = None

    @property
    def is_savepoint(self) -> bool:
        return self.options.kind is CheckpointKind.SAVEPOINT


@dataclass(frozen=True)
class CompletedInfo:
    checkpoint_id: int
    timestamp_ms: int
    duration_ms: int
    size_bytes: int
    kind: CheckpointKind
    path: str


class CheckpointCoordinator:
    def __init__(self, config: CheckpointConfig, *, first_id: int, now_ms: int) -> None:
        self.config = config
        self.next_id = max(1, first_id)
        self.pending: PendingCheckpoint | None = None
        self.consecutive_failures = 0
        self.last_trigger_ms = now_ms
        self.last_completion_ms = -(1 << 62)
        self.completed: list[CompletedInfo] = []
        self.num_completed = 0
        self.num_failed = 0

    # -- triggering ---------------------------------------------------------------------
    def due(self, now_ms: int) -> bool:
        interval = self.config.interval_ms
        if interval is None or self.pending is not None:
            return False
        return (
            now_ms - self.last_trigger_ms >= interval
            and now_ms - self.last_completion_ms >= self.config.min_pause_ms
        )

    def trigger(
        self, now_ms: int, expected: set[TaskKey], options: CheckpointOptions | None = None
    ) -> PendingCheckpoint:
        if self.pending is not None:
            raise errors.CheckpointError(
                f"checkpoint {self.pending.checkpoint_id} is still in progress; only one runs at "
                "a time"
            )
        checkpoint = PendingCheckpoint(
            checkpoint_id=self.next_id,
            timestamp_ms=now_ms,
            options=options or CheckpointOptions(),
            expected=set(expected),
        )
        self.next_id += 1
        self.last_trigger_ms = now_ms
        self.pending = checkpoint
        return checkpoint

    # -- acknowledgements -----------------------------------------------------------------
    def acknowledge(self, checkpoint_id: int, task: TaskKey, snapshot: Any) -> bool:
        """Record ``task``'s snapshot; True when the checkpoint became ready to commit."""
        pending = self.pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            return False  # late or stale acknowledgement: dropped
        if pending.state is not PendingState.IN_PROGRESS:
            return False
        if task not in pending.expected:
            return False
        pending.acks[task] = snapshot
        if set(pending.acks) >= pending.expected:
            pending.state = PendingState.READY
            return True
        return False

    def task_finished(self, task: TaskKey) -> bool:
        """A task ended: it no longer takes part; True if the pending one became ready."""
        pending = self.pending
        if pending is None or pending.state is not PendingState.IN_PROGRESS:
            return False
        if task in pending.expected and task not in pending.acks:
            pending.expected.discard(task)
            if set(pending.acks) >= pending.expected:
                pending.state = PendingState.READY
                return True
        return False

    # -- outcome --------------------------------------------------------------------------
    def complete(self, checkpoint_id: int, info: CompletedInfo, now_ms: int) -> None:
        pending = self._require(checkpoint_id, PendingState.READY, "complete")
        pending.state = PendingState.COMPLETED
        self.pending = None
        self.consecutive_failures = 0
        self.last_completion_ms = now_ms
        self.num_completed += 1
        self.completed.append(info)
        del self.completed[:-20]

    def abort(self, checkpoint_id: int, reason: str) -> bool:
        """Abort a pending checkpoint; True if the job must now fail (tolerance exceeded)."""
        pending = self.pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            return False
        pending.state = PendingState.ABORTED
        pending.failure = reason
        self.pending = None
        self.num_failed += 1
        if pending.is_savepoint:
            return False  # a failed savepoint fails the request, not the job
        self.consecutive_failures += 1
        return self.consecutive_failures > self.config.tolerable_failures

    def timed_out(self, now_ms: int) -> PendingCheckpoint | None:
        pending = self.pending
        if pending is not None and now_ms - pending.timestamp_ms > self.config.timeout_ms:
            return pending
        return None

    def _require(self, checkpoint_id: int, state: PendingState, action: str) -> PendingCheckpoint:
        pending = self.pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            raise errors.CheckpointError(f"cannot {action} checkpoint {checkpoint_id}: not pending")
        if pending.state is not state:
            raise errors.CheckpointError(
                f"cannot {action} checkpoint {checkpoint_id} in state {pending.state.value}"
            )
        return pending
