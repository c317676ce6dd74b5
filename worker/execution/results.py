"""What a finished run reports: attempts, restores, checkpoints, duration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamjob.checkpoint.coordinator import CompletedInfo
from streamjob.checkpoint.restoring import RestoreStats
from streamjob.runtime.task import Task


@dataclass
class AttemptInfo:
    attempt: int
    restored_checkpoint_id: int | None
    restored_from: str | None
    restore_stats: RestoreStats
    failure: str | None = None
    source_records: int = 0
    #: positions of every source split in the restored checkpoint (uid -> [[split, pos]])
    restored_positions: dict[str, list[Any]] = field(default_factory=dict)
    restore_per_task: dict[str, RestoreStats] = field(default_factory=dict)


@dataclass
class JobRunResult:
    job_id: str
    state: str  # FINISHED | STOPPED | FAILED
    duration_s: float
    attempts: list[AttemptInfo] = field(default_factory=list)
    checkpoints: list[CompletedInfo] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    savepoint_path: str | None = None

    @property
    def restarts(self) -> int:
        return len(self.attempts) - 1

    @property
    def source_records(self) -> int:
        return sum(t.records_out for t in self.tasks if t.gate is None)

    @property
    def last_checkpoint(self) -> CompletedInfo | None:
        return self.checkpoints[-1] if self.checkpoints else None
