"""The gateway the REST routes call: :class:`JobGateway`, and its local implementation.

Routes (:mod:`.routes`) are thin adapters: they parse a request, call one gateway method and
return its DTO; the gateway raises :class:`JobNotFound` (404), :class:`GatewayConflict` (409)
or :class:`GatewayBadRequest` (400) with a message for people. The distributed JobManager will
implement the same protocol over its TaskManagers.

:class:`LocalRunnerGateway` drives one :class:`LocalJobRunner` in this process:

1. ``start()`` runs the job as an asyncio task and tracks its lifecycle (Flink's job states);
2. savepoint triggers get a trigger id and run as tasks; their status is polled by id;
3. ``cancel`` cancels the running attempt (operators are closed), or the restart delay;
4. rescale is refused: a local run has no TaskManagers to redeploy (409).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from streamjob import errors
from streamjob.checkpoint.coordinator import CheckpointCoordinator
from streamjob.execution.local_job import LocalJobRunner
from streamjob.execution.results import JobRunResult
from streamjob.jobmanager import dto, views
from streamjob.runtime.local_executor import Progress


class GatewayError(errors.StreamJobError):
    """A request the gateway refuses; the routes turn it into an HTTP status."""


class JobNotFound(GatewayError):
    pass


class GatewayConflict(GatewayError):
    """The request does not fit the job's current state (or this runtime)."""


class GatewayBadRequest(GatewayError):
    pass


class JobGateway(Protocol):
    """What the REST API needs from a JobManager."""

    async def readiness(self) -> dto.Health: ...

    async def overview(self) -> dto.ClusterOverview: ...

    async def jobs(self) -> list[dto.JobSummary]: ...

    async def job(self, job_id: str) -> dto.JobDetails: ...

    async def checkpoints(self, job_id: str) -> dto.CheckpointStatistics: ...

    async def trigger_savepoint(
        self, job_id: str, request: dto.SavepointTriggerRequest
    ) -> dto.SavepointTriggerResponse: ...

    async def savepoint_status(self, job_id: str, trigger_id: str) -> dto.SavepointStatus: ...

    async def rescale(self, job_id: str, request: dto.RescaleRequest) -> dto.JobAction: ...

    async def cancel(self, job_id: str) -> dto.JobAction: ...

    async def task_managers(self) -> list[dto.TaskManagerInfo]: ...


RESCALE_UNSUPPORTED = (
    "rescale needs the distributed runtime; stop with a savepoint and restart with another "
    "parallelism (streamjob savepoint --stop, then streamjob run --from-savepoint PATH -p N)"
)


def streamjob_version() -> str:
    try:
        return metadata.version("streamjob")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class _Trigger:
    trigger_id: str
    task: asyncio.Task[str]
    observed: bool = False


class LocalRunnerGateway:
    """:class:`JobGateway` over one :class:`LocalJobRunner` running in this process."""

    def __init__(
        self,
        runner: LocalJobRunner,
        *,
        name: str,
        savepoint_dir: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.name = name
        self.savepoint_dir = savepoint_dir
        self._now = wall_clock
        self._fallback_id = uuid.uuid4().hex
        self._created_ms = self._ms()
        self._started_ms: int | None = None
        self._ended_ms: int | None = None
        self._run: asyncio.Task[JobRunResult] | None = None
        self._cancel_requested = False
        self._cancel_watch: asyncio.Task[None] | None = None
        self._triggers: dict[str, _Trigger] = {}
        self._all_observed = asyncio.Event()
        self._all_observed.set()
        self._coordinator: CheckpointCoordinator | None = None
        self._failed_before = 0  # failed checkpoints of earlier attempts' coordinators

    def _ms(self) -> int:
        return int(self._now() * 1000)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def job_id(self) -> str:
        """The runner's id (checkpointed runs: given or derived from the directory)."""
        return self.runner.job_id or self._fallback_id

    def start(
        self,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval_s: float = 2.0,
    ) -> asyncio.Task[JobRunResult]:
        if self._run is not None:
            raise RuntimeError("the job was already started")
        self._started_ms = self._ms()
        run = asyncio.ensure_future(
            self.runner.run(on_progress=on_progress, progress_interval_s=progress_interval_s)
        )
        run.add_done_callback(self._on_done)
        self._run = run
        return run

    def _on_done(self, run: asyncio.Task[JobRunResult]) -> None:
        self._ended_ms = self._ms()
        # A savepoint that has not completed now never will. Deferred by one loop iteration,
        # so a trigger whose result is already set (stop-with-savepoint) resumes first.
        asyncio.get_running_loop().call_soon(self._abandon_triggers)

    def _abandon_triggers(self) -> None:
        for trigger in self._triggers.values():
            trigger.task.cancel()

    @property
    def state(self) -> dto.JobState:
        run = self._run
        if run is None:
            return dto.JobState.CREATED
        if run.done():
            if run.cancelled():
                return dto.JobState.CANCELED
            exc = run.exception()
            if exc is None:
                return dto.JobState.FINISHED
            if isinstance(exc, errors.JobCancelledError):
                return dto.JobState.CANCELED
            return dto.JobState.FAILED
        if self._cancel_requested:
            return dto.JobState.CANCELLING
        result = self.runner.result
        if result is None:
            return dto.JobState.CREATED
        if result.attempts and result.attempts[-1].failure is not None:
            return dto.JobState.RESTARTING
        return dto.JobState.RUNNING

    def _failure(self) -> str | None:
        run = self._run
        if run is None or not run.done() or run.cancelled():
            return None
        exc = run.exception()
        if exc is None or isinstance(exc, errors.JobCancelledError):
            return None
        return str(exc)

    def _lifecycle(self) -> views.Lifecycle:
        return views.Lifecycle(
            job_id=self.job_id,
            name=self.name,
            state=self.state,
            start_time_ms=self._started_ms or self._created_ms,
            end_time_ms=self._ended_ms,
            now_ms=self._ms(),
            failure=self._failure(),
        )

    def _require(self, job_id: str) -> None:
        if job_id != self.job_id:
            raise JobNotFound(
                f"job {job_id!r} not found: this JobManager runs job {self.job_id!r} "
                "(GET /jobs lists it)"
            )

    def _failed_checkpoints(self) -> int:
        coordinator = self.runner.coordinator
        if coordinator is not self._coordinator:
            previous = self._coordinator
            if previous is not None:
                self._failed_before += previous.num_failed
            self._coordinator = coordinator
        return self._failed_before + (coordinator.num_failed if coordinator is not None else 0)

    def has_unobserved_savepoints(self) -> bool:
        """A trigger whose final status no client has fetched yet (keep serving a little)."""
        return any(not t.observed for t in self._triggers.values())

    async def savepoints_observed(self) -> None:
        """Return once every savepoint trigger's final status was fetched by a client."""
        await self._all_observed.wait()

    # -- JobGateway: reads ------------------------------------------------------------------
    async def readiness(self) -> dto.Health:
        state = self.state
        if state is dto.JobState.CREATED:
            return dto.Health(status="not ready", detail="the job is being deployed")
        return dto.Health(status="ok", detail=f"job {self.job_id} is {state.value}")

    async def overview(self) -> dto.ClusterOverview:
        state = self.state
        slots = self._slots()
        busy = 0 if state.terminal else slots
        return dto.ClusterOverview(
            version=streamjob_version(),
            uptime_s=max(0.0, (self._ms() - self._created_ms) / 1000),
            taskmanagers=1,
            slots_total=slots,
            slots_available=slots - busy,
            jobs_running=0 if state.terminal else 1,
            jobs_finished=int(state is dto.JobState.FINISHED),
            jobs_cancelled=int(state is dto.JobState.CANCELED),
            jobs_failed=int(state is dto.JobState.FAILED),
        )

    def _slots(self) -> int:
        executor = self.runner.executor
        if executor is None:
            return 0
        return max((v.parallelism for v in executor.graph.vertices), default=0)

    async def jobs(self) -> list[dto.JobSummary]:
        return [views.summary(self._lifecycle())]

    async def job(self, job_id: str) -> dto.JobDetails:
        self._require(job_id)
        return views.job_details(self.runner, self._lifecycle())

    async def checkpoints(self, job_id: str) -> dto.CheckpointStatistics:
        self._require(job_id)
        return views.checkpoint_statistics(self.runner, failed=self._failed_checkpoints())

    async def task_managers(self) -> list[dto.TaskManagerInfo]:
        executor = self.runner.executor
        running = 0 if executor is None else sum(1 for t in executor.tasks if not t.finished)
        if self.state.terminal:
            running = 0
        slots = self._slots()
        return [
            dto.TaskManagerInfo(
                id=f"local-{os.getpid()}",
                address="127.0.0.1",
                pid=os.getpid(),
                slots_total=slots,
                slots_free=slots if running == 0 else 0,
                tasks_running=running,
                registered_at_ms=self._created_ms,
            )
        ]

    # -- JobGateway: savepoints -------------------------------------------------------------
    async def trigger_savepoint(
        self, job_id: str, request: dto.SavepointTriggerRequest
    ) -> dto.SavepointTriggerResponse:
        self._require(job_id)
        if self.runner.checkpoint is None:
            raise GatewayConflict(
                "savepoints need checkpointing: start the job with --checkpoint-dir"
            )
        state = self.state
        if state is not dto.JobState.RUNNING:
            raise GatewayConflict(f"job {job_id} is {state.value}: a savepoint needs a RUNNING job")
        busy = [t.trigger_id for t in self._triggers.values() if not t.task.done()]
        if busy:
            raise GatewayConflict(
                f"savepoint {busy[0]} is still in progress: poll "
                f"GET /jobs/{job_id}/savepoints/{busy[0]} and trigger again when it ended"
            )
        target = request.target_dir or self.savepoint_dir
        if not target:
            raise GatewayBadRequest(
                "no target_dir given and the job has no default savepoint directory: send "
                '{"target_dir": "s3://bucket/savepoints"} or start the job with --savepoint-dir'
            )
        trigger_id = uuid.uuid4().hex
        task = asyncio.ensure_future(self.runner.trigger_savepoint(target, stop=request.stop))
        self._triggers[trigger_id] = _Trigger(trigger_id, task)
        self._all_observed.clear()
        return dto.SavepointTriggerResponse(trigger_id=trigger_id)

    async def savepoint_status(self, job_id: str, trigger_id: str) -> dto.SavepointStatus:
        self._require(job_id)
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise JobNotFound(f"no savepoint trigger {trigger_id!r} for job {job_id}")
        task = trigger.task
        if not task.done():
            return dto.SavepointStatus(
                trigger_id=trigger_id, status=dto.OperationStatus.IN_PROGRESS
            )
        trigger.observed = True
        if not self.has_unobserved_savepoints():
            self._all_observed.set()
        if task.cancelled():
            return dto.SavepointStatus(
                trigger_id=trigger_id,
                status=dto.OperationStatus.FAILED,
                failure_cause=f"the job ended ({self.state.value}) before the savepoint completed",
            )
        exc = task.exception()
        if exc is not None:
            return dto.SavepointStatus(
                trigger_id=trigger_id, status=dto.OperationStatus.FAILED, failure_cause=str(exc)
            )
        return dto.SavepointStatus(
            trigger_id=trigger_id, status=dto.OperationStatus.COMPLETED, location=task.result()
        )

    # -- JobGateway: changes ----------------------------------------------------------------
    async def rescale(self, job_id: str, request: dto.RescaleRequest) -> dto.JobAction:
        self._require(job_id)
        raise GatewayConflict(RESCALE_UNSUPPORTED)

    async def cancel(self, job_id: str) -> dto.JobAction:
        self._require(job_id)
        state = self.state
        if state.terminal:
            raise GatewayConflict(f"job {job_id} already ended: it is {state.value}")
        self.request_cancel()
        return dto.JobAction(
            job_id=job_id, state=self.state, message="cancelling: the job's operators are closed"
        )

    def request_cancel(self) -> None:
        """Cancel the run: the live attempt's tasks (so operators close), else the task."""
        run = self._run
        if run is None or run.done() or self._cancel_requested:
            return
        restarting = self.state is dto.JobState.RESTARTING
        self._cancel_requested = True
        executor = self.runner.executor
        if executor is None or restarting:
            run.cancel()
            return
        executor.cancel()
        self._cancel_watch = asyncio.ensure_future(self._finish_cancel(run, executor))

    async def _finish_cancel(self, run: asyncio.Task[JobRunResult], executor: object) -> None:
        """An attempt that failed while being cancelled must not restart: cancel the task."""
        while not run.done():
            result = self.runner.result
            failing = (
                result is not None
                and bool(result.attempts)
                and (result.attempts[-1].failure is not None)
            )
            if self.runner.executor is not executor or failing:
                run.cancel()
                return
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Stop background tasks (after the run ended)."""
        for task in [self._cancel_watch, *(t.task for t in self._triggers.values())]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
