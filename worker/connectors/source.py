"""The source interface: splits, readers, and positions that a checkpoint can keep.

Modelled on Flink's FLIP-27 sources, without the enumerator round-trips: a :class:`Source`
deterministically cuts its input into :class:`SourceSplit` s (``create_splits``); on a fresh
start split *k* goes to subtask ``k % parallelism``, so every process that imports the job
derives the same assignment. A reader polls whole batches and reports each split's position
(``snapshot_splits``) so that a checkpoint can store it and a restore can resume from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from streamjob.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class SourceSplit:
    """A unit of input with a JSON-serializable position (``None`` = from the start)."""

    split_id: str
    position: Any = None


@dataclass(frozen=True, slots=True)
class ReaderContext:
    subtask_index: int
    parallelism: int
    clock: Clock = SYSTEM_CLOCK


@dataclass(slots=True)
class Polled:
    """A batch from a reader: records and, if the source knows them, their timestamps."""

    records: list[Any]
    timestamps: list[int] | None = None


class SourceReader(ABC):
    """Reads the splits assigned to one subtask, a batch at a time."""

    @abstractmethod
    def add_splits(self, splits: list[SourceSplit]) -> None: ...

    @abstractmethod
    def poll(self, max_records: int) -> Polled | None:
        """Up to ``max_records`` records, or ``None`` if nothing is available right now."""

    @abstractmethod
    def is_finished(self) -> bool:
        """True once every assigned split is exhausted (bounded input only)."""

    @abstractmethod
    def snapshot_splits(self) -> list[SourceSplit]:
        """Every assigned split with the position of the next record to emit."""

    def next_available_in(self) -> float:
        """Seconds until records may be available again after ``poll`` returned ``None``."""
        return 0.005

    def notify_checkpoint_complete(self, checkpoint_id: int, splits: list[SourceSplit]) -> None:
        """Checkpoint ``checkpoint_id``, which stored these positions, completed (a Kafka
        reader commits them to its consumer group for monitoring, as Flink's does)."""
        return None

    def records_replayed(self) -> int:
        return 0

    def close(self) -> None:
        return None


class Source(ABC):
    """A replayable input."""

    name = "source"
    #: a non-parallel source (a collection) runs with parallelism 1
    max_parallelism: int | None = None

    @abstractmethod
    def is_bounded(self) -> bool: ...

    @abstractmethod
    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        """Split the input for a fresh start at ``parallelism``; deterministic."""

    @abstractmethod
    def create_reader(self, context: ReaderContext) -> SourceReader: ...


def assign_splits(splits: list[SourceSplit], subtask: int, parallelism: int) -> list[SourceSplit]:
    """Round-robin assignment: split k to subtask k % parallelism (fresh start and restore)."""
    return [split for k, split in enumerate(splits) if k % parallelism == subtask]
