"""``TestingJobManagerClient``: an in-memory JobManager for the operator's tests.

It implements :class:`~.jobmanager.JobManagerService` over a dict of fake jobs and records every
call (``calls``, ``failed_reports``), like flink-kubernetes-operator's ``TestingFlinkService``.
A test starts a job (:meth:`TestingJobManagerClient.run_job`) or lets the fake start any job it
is asked about (``auto_run``); rescales and savepoints complete at once unless told otherwise
(``rescale_immediately``, ``complete_savepoints``), and ``reachable = False`` makes every call fail.
"""

from __future__ import annotations

import dataclasses
import itertools
import time

from streamjob.jobmanager import dto
from streamjob.operator.clients import jobmanager


@dataclasses.dataclass
class FakeJob:
    id: str
    state: dto.JobState = dto.JobState.RUNNING
    parallelism: int = 1
    max_parallelism: int = 128
    restarts: int = 0
    start_time_ms: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))
    stopped_with_savepoint: str | None = None
    checkpoints: list[dto.CheckpointInfo] = dataclasses.field(default_factory=list)

    def details(self) -> dto.JobDetails:
        return dto.JobDetails(
            id=self.id,
            name="fake",
            state=self.state,
            start_time_ms=self.start_time_ms,
            end_time_ms=None,
            duration_ms=0,
            parallelism=self.parallelism,
            max_parallelism=self.max_parallelism,
            restarts=self.restarts,
            attempt=self.restarts,
            source_records=0,
            last_failure=None,
            stopped_with_savepoint=self.stopped_with_savepoint,
            vertices=[],
        )


class TestingJobManagerClient:
    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.jobs_by_id: dict[str, FakeJob] = {}
        self.calls: list[tuple[str, ...]] = []
        self.failed_reports: list[str] = []
        self.savepoints: dict[str, dto.SavepointStatus] = {}
        self.reachable = True
        #: start any job asked about, at this parallelism (None: unknown jobs answer 404)
        self.auto_run: int | None = None
        self.rescale_immediately = True
        self.complete_savepoints = True
        self._ids = itertools.count(1)

    def connector(self) -> jobmanager.Connector:
        return lambda target: self

    # -- test controls ----------------------------------------------------------------------
    def run_job(self, job_id: str, *, parallelism: int, max_parallelism: int = 128) -> FakeJob:
        job = FakeJob(id=job_id, parallelism=parallelism, max_parallelism=max_parallelism)
        self.jobs_by_id[job_id] = job
        return job

    def complete_checkpoint(self, job_id: str, checkpoint_id: int, path: str) -> None:
        info = dto.CheckpointInfo(
            id=checkpoint_id,
            kind="checkpoint",
            status=dto.OperationStatus.COMPLETED,
            trigger_timestamp_ms=int(time.time() * 1000),
            duration_ms=5,
            size_bytes=1024,
            path=path,
        )
        self.jobs_by_id[job_id].checkpoints.insert(0, info)

    def calls_named(self, name: str) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] == name]

    # -- the service --------------------------------------------------------------------------
    def _check(self, *call: str) -> None:
        self.calls.append(call)
        if not self.reachable:
            raise jobmanager.JobManagerError("the fake JobManager is unreachable")

    def _job(self, job_id: str) -> FakeJob:
        if job_id not in self.jobs_by_id and self.auto_run is not None:
            self.run_job(job_id, parallelism=self.auto_run)
        if job_id not in self.jobs_by_id:
            raise jobmanager.JobManagerError(f"no job {job_id}", status=404)
        return self.jobs_by_id[job_id]

    async def jobs(self) -> list[dto.JobSummary]:
        self._check("jobs")
        return [
            dto.JobSummary(
                id=j.id,
                name="fake",
                state=j.state,
                start_time_ms=j.start_time_ms,
                end_time_ms=None,
                duration_ms=0,
            )
            for j in self.jobs_by_id.values()
        ]

    async def job(self, job_id: str) -> dto.JobDetails:
        self._check("job", job_id)
        return self._job(job_id).details()

    async def checkpoints(self, job_id: str) -> dto.CheckpointStatistics:
        self._check("checkpoints", job_id)
        job = self._job(job_id)
        completed = [c for c in job.checkpoints if c.kind == "checkpoint"]
        savepoints = [c for c in job.checkpoints if c.kind == "savepoint"]
        return dto.CheckpointStatistics(
            enabled=True,
            interval_ms=10_000,
            mode="EXACTLY_ONCE",
            counts=dto.CheckpointCounts(
                completed=len(job.checkpoints),
                failed=0,
                in_progress=0,
                restored=0,
                total=len(job.checkpoints),
            ),
            latest=dto.LatestCheckpoints(
                completed=completed[0] if completed else None,
                savepoint=savepoints[0] if savepoints else None,
                restored=None,
            ),
            summary=dto.CheckpointSummary(size_bytes=None, duration_ms=None),
            history=list(job.checkpoints),
        )

    async def trigger_savepoint(self, job_id: str, *, target_dir: str, stop: bool) -> str:
        self._check("trigger_savepoint", job_id, target_dir, str(stop))
        job = self._job(job_id)
        if job.state is not dto.JobState.RUNNING:
            raise jobmanager.JobManagerError(f"job {job_id} is {job.state.value}", status=409)
        trigger = f"trigger-{next(self._ids)}"
        checkpoint_id = len(job.checkpoints) + 1
        location = f"{target_dir.rstrip('/')}/savepoint-{job_id}-{checkpoint_id}"
        if self.complete_savepoints:
            self.savepoints[trigger] = dto.SavepointStatus(
                trigger_id=trigger, status=dto.OperationStatus.COMPLETED, location=location
            )
            job.checkpoints.insert(
                0,
                dto.CheckpointInfo(
                    id=checkpoint_id,
                    kind="savepoint",
                    status=dto.OperationStatus.COMPLETED,
                    trigger_timestamp_ms=int(time.time() * 1000),
                    duration_ms=5,
                    size_bytes=2048,
                    path=location,
                ),
            )
            if stop:
                job.state = dto.JobState.FINISHED
                job.stopped_with_savepoint = location
        else:
            self.savepoints[trigger] = dto.SavepointStatus(
                trigger_id=trigger, status=dto.OperationStatus.IN_PROGRESS
            )
        return trigger

    async def savepoint_status(self, job_id: str, trigger_id: str) -> dto.SavepointStatus:
        self._check("savepoint_status", job_id, trigger_id)
        if trigger_id not in self.savepoints:
            raise jobmanager.JobManagerError(f"no savepoint {trigger_id}", status=404)
        return self.savepoints[trigger_id]

    async def rescale(self, job_id: str, parallelism: int) -> dto.JobAction:
        self._check("rescale", job_id, str(parallelism))
        job = self._job(job_id)
        if self.rescale_immediately:
            job.parallelism = parallelism
        return dto.JobAction(job_id=job_id, state=job.state, message="rescaling")

    async def cancel(self, job_id: str) -> dto.JobAction:
        self._check("cancel", job_id)
        job = self._job(job_id)
        job.state = dto.JobState.CANCELED
        return dto.JobAction(job_id=job_id, state=job.state, message="cancelled")

    async def report_failed_taskmanager(self, pod_uid: str) -> None:
        self._check("report_failed_taskmanager", pod_uid)
        self.failed_reports.append(pod_uid)

    async def aclose(self) -> None:
        return None
