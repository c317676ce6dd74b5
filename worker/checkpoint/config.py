"""Checkpointing settings, with Flink's defaults.

Interval and storage are the user's; the rest follow Flink: timeout 10 minutes, no minimum
pause, one checkpoint at a time, zero tolerable failures (a failed checkpoint fails the job, so
a transient storage error restarts it from the last completed checkpoint), one retained.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streamjob import errors


class CheckpointingMode(StrEnum):
    EXACTLY_ONCE = "exactly_once"
    AT_LEAST_ONCE = "at_least_once"


@dataclass(frozen=True)
class CheckpointConfig:
    directory: str
    interval_ms: int | None = None
    timeout_ms: int = 10 * 60 * 1000
    min_pause_ms: int = 0
    max_concurrent: int = 1
    tolerable_failures: int = 0
    retained: int = 1
    mode: CheckpointingMode = CheckpointingMode.EXACTLY_ONCE
    job_id: str | None = None
    from_savepoint: str | None = None
    allow_non_restored_state: bool = False
    #: start even if the latest checkpoint is unreadable (may duplicate committed output)
    allow_checkpoint_fallback: bool = False
    #: run exactly-once on storage that does not honour put-if-absent (unsafe)
    allow_unsafe_storage: bool = False
    restore: bool = True
    #: backends with native snapshots (RocksDB) take incremental checkpoints; False: canonical
    #: full ones (savepoints are canonical either way)
    incremental: bool = True

    def __post_init__(self) -> None:
        if self.interval_ms is not None and self.interval_ms < 10:
            raise errors.JobDefinitionError(
                f"checkpoint interval must be >= 10 ms, got {self.interval_ms}"
            )
        if self.retained < 1:
            raise errors.JobDefinitionError("retained checkpoints must be >= 1")
        if self.max_concurrent != 1:
            raise errors.JobDefinitionError(
                "only one concurrent checkpoint is supported (Flink's default)"
            )
        if self.tolerable_failures < 0:
            raise errors.JobDefinitionError("tolerable checkpoint failures must be >= 0")
