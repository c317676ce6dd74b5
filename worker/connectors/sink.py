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
    subtask_index: int
    parallelism: int
    attempt: int = 0
    checkpointing: bool = False


class SinkWriter(ABC):
    @abstractmethod
    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None: ...

    def finish(self) -> None:  # noqa: B027 - optional hook
        """End of input: make everything written final (when not checkpointing)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; called on success and on failure."""

    def snapshot_state(self, checkpoint_id: int) -> Any:
        return None

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        return None


class Sink(ABC):
    name = "sink"

    @abstractmethod
    def create_writer(self, context: SinkContext) -> SinkWriter: ...
