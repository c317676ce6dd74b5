"""The JobManager's REST shapes: frozen pydantic models, modelled on Flink's REST API.

Pure schemas (pydantic only, no FastAPI): the routes in :mod:`.routes` return them, the HTTP
client in :mod:`streamjob.client` parses them, and the operator may import them. Field names are
snake_case; times are epoch milliseconds; sizes are bytes. Requests reject unknown fields, so a
typo (``target-dir``) is a 422 naming it rather than a silently ignored setting.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from streamjob.jobstate import JobState as JobState


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OperationStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class ErrorResponse(_Shape):
    """Every error response (Flink's shape): human-readable messages."""

    errors: list[str]


# -- health and cluster -------------------------------------------------------------------------
class Health(_Shape):
    status: str  # "ok" | "not ready"
    detail: str = ""


class ClusterOverview(_Shape):
    version: str
    uptime_s: float
    taskmanagers: int
    slots_total: int
    slots_available: int
    jobs_running: int
    jobs_finished: int
    jobs_cancelled: int
    jobs_failed: int


class TaskManagerInfo(_Shape):
    id: str
    address: str
    pid: int
    slots_total: int
    slots_free: int
    tasks_running: int
    registered_at_ms: int


class TaskManagerList(_Shape):
    taskmanagers: list[TaskManagerInfo]


# -- jobs ---------------------------------------------------------------------------------------
class JobSummary(_Shape):
    id: str
    name: str
    state: JobState
    start_time_ms: int
    end_time_ms: int | None
    duration_ms: int


class JobList(_Shape):
    jobs: list[JobSummary]


class SubtaskInfo(_Shape):
    index: int
    name: str
    status: str  # RUNNING | FINISHED | CANCELED | FAILED | CREATED
    records_in: int
    records_out: int


class VertexInfo(_Shape):
    id: int
    name: str
    parallelism: int
    max_parallelism: int
    status: str
    records_in: int
    records_out: int
    subtasks: list[SubtaskInfo]


class JobDetails(_Shape):
    id: str
    name: str
    state: JobState
    start_time_ms: int
    end_time_ms: int | None
    duration_ms: int
    parallelism: int
    max_parallelism: int
    restarts: int
    attempt: int
    source_records: int
    last_failure: str | None
    #: set when the job ended with stop-with-savepoint
    stopped_with_savepoint: str | None
    vertices: list[VertexInfo]


# -- checkpoints --------------------------------------------------------------------------------
class CheckpointCounts(_Shape):
    completed: int
    failed: int
    in_progress: int
    restored: int
    total: int


class MinMaxAvg(_Shape):
    min: float
    max: float
    avg: float


class CheckpointSummary(_Shape):
    """Over the completed checkpoints this JobManager has seen (savepoints included)."""

    size_bytes: MinMaxAvg | None
    duration_ms: MinMaxAvg | None


class CheckpointInfo(_Shape):
    id: int
    kind: str  # "checkpoint" | "savepoint"
    status: OperationStatus
    trigger_timestamp_ms: int
    duration_ms: int | None
    size_bytes: int | None
    path: str | None
    acknowledged: int | None = None
    expected: int | None = None


class RestoredCheckpoint(_Shape):
    id: int
    path: str | None
    attempt: int


class LatestCheckpoints(_Shape):
    completed: CheckpointInfo | None
    savepoint: CheckpointInfo | None
    restored: RestoredCheckpoint | None


class CheckpointStatistics(_Shape):
    enabled: bool
    interval_ms: int | None
    mode: str | None
    counts: CheckpointCounts
    latest: LatestCheckpoints
    summary: CheckpointSummary
    #: newest first: the one in progress (if any), then the completed ones
    history: list[CheckpointInfo]


# -- savepoints, rescale, cancel ----------------------------------------------------------------
class SavepointTriggerRequest(_Request):
    #: where ``savepoint-{job_id}-{n}/`` goes (a path, file:// or s3:// URL); the job's default
    #: savepoint directory when omitted
    target_dir: str | None = Field(default=None, min_length=1)
    #: stop the job once the savepoint completed (stop-with-savepoint)
    stop: bool = False


class SavepointTriggerResponse(_Shape):
    trigger_id: str


class SavepointStatus(_Shape):
    trigger_id: str
    status: OperationStatus
    location: str | None = None
    failure_cause: str | None = None


class RescaleRequest(_Request):
    parallelism: int = Field(ge=1, le=32768)


class JobAction(_Shape):
    """The acknowledgement of a request that changes a job (cancel, rescale)."""

    job_id: str
    state: JobState
    message: str
