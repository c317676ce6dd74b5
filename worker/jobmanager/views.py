"""Describing a local run as REST shapes: a ``LocalJobRunner``'s live attributes -> DTOs.

Pure functions (no I/O, no clock of their own): :mod:`.gateway` calls them with the runner and
the lifecycle facts it tracks itself (state, times). Counts are read from the live tasks, so
a snapshot is as fresh as the last batch each task processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streamjob.checkpoint.config import CheckpointConfig
from streamjob.checkpoint.coordinator import CompletedInfo, PendingCheckpoint
from streamjob.execution.local_job import LocalJobRunner
from streamjob.jobmanager import dto
from streamjob.runtime.events import CheckpointKind
from streamjob.runtime.task import Task

HISTORY = 20


@dataclass(frozen=True)
class Lifecycle:
    """What the gateway knows about a run beyond the runner's attributes."""

    job_id: str
    name: str
    state: dto.JobState
    start_time_ms: int
    end_time_ms: int | None
    now_ms: int
    failure: str | None

    @property
    def duration_ms(self) -> int:
        return max(0, (self.end_time_ms or self.now_ms) - self.start_time_ms)


def summary(life: Lifecycle) -> dto.JobSummary:
    return dto.JobSummary(
        id=life.job_id,
        name=life.name,
        state=life.state,
        start_time_ms=life.start_time_ms,
        end_time_ms=life.end_time_ms,
        duration_ms=life.duration_ms,
    )


def _subtask_status(task: Task, state: dto.JobState) -> str:
    if task.finished:
        return "FINISHED"
    if state in (dto.JobState.RUNNING, dto.JobState.CANCELLING):
        return "RUNNING"
    if state is dto.JobState.FINISHED:
        return "FINISHED"
    return state.value


def _vertex_status(statuses: Sequence[str]) -> str:
    if not statuses:
        return "CREATED"
    if all(s == statuses[0] for s in statuses):
        return statuses[0]
    return "RUNNING" if "RUNNING" in statuses else statuses[0]


def job_details(runner: LocalJobRunner, life: Lifecycle) -> dto.JobDetails:
    executor = runner.executor
    result = runner.result
    vertices: list[dto.VertexInfo] = []
    if executor is not None:
        for vertex in executor.graph.vertices:
            tasks = [t for t in executor.tasks if t.vertex_id == vertex.id]
            subtasks = [
                dto.SubtaskInfo(
                    index=t.subtask_index,
                    name=t.name,
                    status=_subtask_status(t, life.state),
                    records_in=t.records_in,
                    records_out=t.records_out,
                )
                for t in sorted(tasks, key=lambda t: t.subtask_index)
            ]
            vertices.append(
                dto.VertexInfo(
                    id=vertex.id,
                    name=vertex.name,
                    parallelism=vertex.parallelism,
                    max_parallelism=vertex.max_parallelism,
                    status=_vertex_status([s.status for s in subtasks]),
                    records_in=sum(s.records_in for s in subtasks),
                    records_out=sum(s.records_out for s in subtasks),
                    subtasks=subtasks,
                )
            )
    attempts = result.attempts if result is not None else []
    last_failure = life.failure or next(
        (a.failure for a in reversed(attempts) if a.failure is not None), None
    )
    return dto.JobDetails(
        id=life.job_id,
        name=life.name,
        state=life.state,
        start_time_ms=life.start_time_ms,
        end_time_ms=life.end_time_ms,
        duration_ms=life.duration_ms,
        parallelism=max((v.parallelism for v in vertices), default=0),
        max_parallelism=max((v.max_parallelism for v in vertices), default=0),
        restarts=result.restarts if result is not None and attempts else 0,
        attempt=attempts[-1].attempt if attempts else 0,
        source_records=result.source_records if result is not None else 0,
        last_failure=last_failure,
        stopped_with_savepoint=result.savepoint_path if result is not None else None,
        vertices=vertices,
    )


def completed_info(info: CompletedInfo) -> dto.CheckpointInfo:
    return dto.CheckpointInfo(
        id=info.checkpoint_id,
        kind=info.kind.value,
        status=dto.OperationStatus.COMPLETED,
        trigger_timestamp_ms=info.timestamp_ms,
        duration_ms=info.duration_ms,
        size_bytes=info.size_bytes,
        path=info.path,
    )


def pending_info(pending: PendingCheckpoint) -> dto.CheckpointInfo:
    return dto.CheckpointInfo(
        id=pending.checkpoint_id,
        kind=pending.options.kind.value,
        status=dto.OperationStatus.IN_PROGRESS,
        trigger_timestamp_ms=pending.timestamp_ms,
        duration_ms=None,
        size_bytes=None,
        path=None,
        acknowledged=len(pending.acks),
        expected=len(pending.expected),
    )


def min_max_avg(values: Sequence[float]) -> dto.MinMaxAvg | None:
    if not values:
        return None
    return dto.MinMaxAvg(min=min(values), max=max(values), avg=sum(values) / len(values))


def statistics(
    *,
    config: CheckpointConfig | None,
    completed: Sequence[CompletedInfo],
    pending: PendingCheckpoint | None,
    failed: int,
    restored: dto.RestoredCheckpoint | None,
    restored_count: int,
) -> dto.CheckpointStatistics:
    """The checkpoint statistics of any runtime (local runner or cluster job master)."""
    in_progress = [pending_info(pending)] if pending is not None else []
    checkpoints = [c for c in completed if c.kind is CheckpointKind.CHECKPOINT]
    savepoints = [c for c in completed if c.kind is CheckpointKind.SAVEPOINT]
    return dto.CheckpointStatistics(
        enabled=config is not None,
        interval_ms=config.interval_ms if config is not None else None,
        mode=config.mode.value if config is not None else None,
        counts=dto.CheckpointCounts(
            completed=len(completed),
            failed=failed,
            in_progress=len(in_progress),
            restored=restored_count,
            total=len(completed) + failed + len(in_progress),
        ),
        latest=dto.LatestCheckpoints(
            completed=completed_info(checkpoints[-1]) if checkpoints else None,
            savepoint=completed_info(savepoints[-1]) if savepoints else None,
            restored=restored,
        ),
        summary=dto.CheckpointSummary(
            size_bytes=min_max_avg([c.size_bytes for c in completed]),
            duration_ms=min_max_avg([c.duration_ms for c in completed]),
        ),
        history=in_progress + [completed_info(c) for c in reversed(completed[-HISTORY:])],
    )


def checkpoint_statistics(runner: LocalJobRunner, *, failed: int) -> dto.CheckpointStatistics:
    """``failed`` is counted by the gateway over every attempt's coordinator."""
    result = runner.result
    coordinator = runner.coordinator
    restored = [
        a
        for a in (result.attempts if result is not None else [])
        if a.restored_checkpoint_id is not None
    ]
    last = restored[-1] if restored else None
    return statistics(
        config=runner.checkpoint,
        completed=list(result.checkpoints) if result is not None else [],
        pending=coordinator.pending if coordinator is not None else None,
        failed=failed,
        restored=None
        if last is None or last.restored_checkpoint_id is None
        else dto.RestoredCheckpoint(
            id=last.restored_checkpoint_id, path=last.restored_from, attempt=last.attempt
        ),
        restored_count=len(restored),
    )
