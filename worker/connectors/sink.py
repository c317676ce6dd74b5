"""The sink interface the runtime drives: whole batches in, hooks for checkpoints.

A writer gets every batch (``write_batch``), is told when input ends (``finish``) and, when
checkpointing is on, snapshots its pending transactions and commits them when told the
checkpoint completed (two-phase commit; see the checkpointing layer).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SinkContext:
    """Where a writer runs. With checkpointing, ``restored_state`` holds the pending
    transactions of *every* writer of the restored checkpoint (union redistribution): each
    writer commits those :func:`assigned` to it, so a rescale loses none; commits must be
    idempotent (the checkpoint may have been committed before the failure)."""

    subtask_index: int
    parallelism: int
    attempt: int = 0
    checkpointing: bool = False
    restored_state: list[Any] | None = None
    #: unique per deployment attempt (same for all subtasks of that attempt)
    attempt_id: str = "0"


class SinkWriter(ABC):
    @abstractmethod
    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None: ...

    def finish(self) -> None:  # noqa: B027 - optional hook
        """End of input: make everything written final (when not checkpointing)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; called on success and on failure."""

    def snapshot_state(self, checkpoint_id: int) -> list[Any] | None:
        """Pre-commit: seal the open transaction and return every pending (pre-committed,
        not yet committed) transaction as a serializable descriptor, to store in the
        checkpoint."""
        return None

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Commit this writer's transactions pre-committed for checkpoints <= the id."""
        return None

    def notify_checkpoint_aborted(self, checkpoint_id: int) -> None:
        """The checkpoint failed; its transactions stay pending for the next one."""
        return None


def assigned(transaction_id: str, context: SinkContext) -> bool:
    """Whether the writer of ``context`` commits restored ``transaction_id`` (deterministic)."""
    import zlib

    return zlib.crc32(transaction_id.encode()) % context.parallelism == context.subtask_index


class Sink(ABC):
    name = "sink"

    @abstractmethod
    def create_writer(self, context: SinkContext) -> SinkWriter: ...

    def check_checkpointing(self, interval_ms: int | None) -> None:
        """Called when the job is built, with the checkpoint interval it runs with (None:
        no periodic checkpoints): warn about settings that cannot work with it (a Kafka
        transaction timeout shorter than the interval loses data)."""
        return None
