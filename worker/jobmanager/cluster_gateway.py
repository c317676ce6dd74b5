"""The REST gateway of the distributed JobManager: a :class:`JobMaster` seen as DTOs.

Same protocol (:class:`JobGateway`) and routes as a local run, so clients, the CLI and the
operator see one API. Subtask counters come from the TaskManagers' heartbeat metrics (as fresh
as the last heartbeat); checkpoint figures from the job master's checkpoint driver.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from streamjob.cluster.jobmaster import JobMaster
from streamjob.jobmanager import dto, gateway, views


class ClusterGateway:
    def __init__(self, jm: JobMaster) -> None:
        self.jm = jm
        self.started_ms = int(time.time() * 1000)
        self._triggers: dict[str, asyncio.Future[str]] = {}

    # -- helpers --------------------------------------------------------------------------------
    def _require(self, job_id: str) -> None:
        if job_id != self.jm.job_id:
            raise gateway.JobNotFound(
                f"unknown job {job_id!r}: this JobManager runs job {self.jm.job_id!r}"
            )

    def _state(self) -> dto.JobState:
        return self.jm.state

    def _counters(self) -> dict[tuple[int, int], dict[str, Any]]:
        counters: dict[tuple[int, int], dict[str, Any]] = {}
        for info in self.jm.tms.values():
            metrics = info.metrics or {}
            if metrics.get("attempt") != self.jm.attempt:
                continue
            for task in metrics.get("tasks", []):
                counters[(int(task["vertex"]), int(task["subtask"]))] = task
        return counters

    def _summary(self) -> dto.JobSummary:
        jm = self.jm
        now = int(time.time() * 1000)
        end = jm.end_time_ms if self._state().terminal else None
        return dto.JobSummary(
            id=jm.job_id,
            name=jm.spec.job_ref,
            state=self._state(),
            start_time_ms=jm.started_ms,
            end_time_ms=end,
            duration_ms=max(0, (end or now) - jm.started_ms),
        )

    # -- JobGateway ---------------------------------------------------------------------------
    async def readiness(self) -> dto.Health:
        if not self.jm.job_id:
            return dto.Health(status="not ready", detail="the job master is starting")
        return dto.Health(status="ok", detail=f"job {self.jm.job_id} {self.jm.state.value}")

    async def overview(self) -> dto.ClusterOverview:
        alive = [i for i in self.jm.tms.values() if i.alive]
        used = len(set(self.jm.placement.values())) if self._state() == dto.JobState.RUNNING else 0
        state = self._state()
        return dto.ClusterOverview(
            version=gateway.streamjob_version(),
            uptime_s=(int(time.time() * 1000) - self.started_ms) / 1000,
            taskmanagers=len(alive),
            slots_total=len(alive),
            slots_available=max(0, len(alive) - used),
            jobs_running=int(not state.terminal),
            jobs_finished=int(state == dto.JobState.FINISHED),
            jobs_cancelled=int(state == dto.JobState.CANCELED),
            jobs_failed=int(state == dto.JobState.FAILED),
        )

    async def jobs(self) -> list[dto.JobSummary]:
        return [self._summary()] if self.jm.job_id else []

    async def job(self, job_id: str) -> dto.JobDetails:
        self._require(job_id)
        jm = self.jm
        summary = self._summary()
        counters = self._counters()
        vertices = []
        graph = jm.graph
        source_records = 0
        for vertex in [] if graph is None else graph.vertices:
            subtasks = []
            for i in range(vertex.parallelism):
                task = counters.get((vertex.id, i), {})
                status = jm.task_states.get((vertex.id, i), "CREATED")
                subtasks.append(
                    dto.SubtaskInfo(
                        index=i,
                        name=str(task.get("name", f"{vertex.name} ({i + 1}/{vertex.parallelism})")),
                        status="RUNNING" if status in ("DEPLOYING", "END_OF_INPUT") else status,
                        records_in=int(task.get("records_in", 0)),
                        records_out=int(task.get("records_out", 0)),
                    )
                )
            if vertex.is_source:
                source_records += sum(s.records_out for s in subtasks)
            statuses = {s.status for s in subtasks}
            vertices.append(
                dto.VertexInfo(
                    id=vertex.id,
                    name=vertex.name,
                    parallelism=vertex.parallelism,
                    max_parallelism=vertex.max_parallelism,
                    status=statuses.pop() if len(statuses) == 1 else "RUNNING",
                    records_in=sum(s.records_in for s in subtasks),
                    records_out=sum(s.records_out for s in subtasks),
                    subtasks=subtasks,
                )
            )
        return dto.JobDetails(
            id=summary.id,
            name=summary.name,
            state=summary.state,
            start_time_ms=summary.start_time_ms,
            end_time_ms=summary.end_time_ms,
            duration_ms=summary.duration_ms,
            parallelism=max((v.parallelism for v in vertices), default=0),
            max_parallelism=max((v.max_parallelism for v in vertices), default=0),
            restarts=jm.restarts,
            attempt=max(0, jm.attempt),
            source_records=source_records,
            last_failure=jm.failure,
            stopped_with_savepoint=None,
            vertices=vertices,
        )

    async def checkpoints(self, job_id: str) -> dto.CheckpointStatistics:
        self._require(job_id)
        jm = self.jm
        driver = jm.driver
        completed = list(jm.completed) + ([] if driver is None else list(driver.completed))
        pending = None if driver is None else driver.coordinator.pending
        failed = jm.failed_checkpoints + (0 if driver is None else driver.coordinator.num_failed)
        restored = None
        if jm.restored_checkpoint_id is not None:
            restored = dto.RestoredCheckpoint(
                id=jm.restored_checkpoint_id, path=jm.restored_from, attempt=max(0, jm.attempt)
            )
        return views.statistics(
            config=jm.spec.checkpoint,
            completed=completed,
            pending=pending,
            failed=failed,
            restored=restored,
            restored_count=int(restored is not None),
        )

    async def trigger_savepoint(
        self, job_id: str, request: dto.SavepointTriggerRequest
    ) -> dto.SavepointTriggerResponse:
        self._require(job_id)
        if request.target_dir is None:
            raise gateway.GatewayBadRequest(
                "give target_dir: this JobManager has no default savepoint directory"
            )
        try:
            done = await self.jm.trigger_savepoint(request.target_dir, stop=request.stop)
        except Exception as exc:
            raise gateway.GatewayConflict(str(exc)) from exc
        trigger_id = f"savepoint-{len(self._triggers) + 1}"
        self._triggers[trigger_id] = done
        return dto.SavepointTriggerResponse(trigger_id=trigger_id)

    async def savepoint_status(self, job_id: str, trigger_id: str) -> dto.SavepointStatus:
        self._require(job_id)
        done = self._triggers.get(trigger_id)
        if done is None:
            raise gateway.JobNotFound(f"unknown savepoint trigger {trigger_id!r}")
        if not done.done():
            return dto.SavepointStatus(
                trigger_id=trigger_id, status=dto.OperationStatus.IN_PROGRESS
            )
        failure = done.exception()
        if failure is not None:
            return dto.SavepointStatus(
                trigger_id=trigger_id, status=dto.OperationStatus.FAILED, failure_cause=str(failure)
            )
        return dto.SavepointStatus(
            trigger_id=trigger_id, status=dto.OperationStatus.COMPLETED, location=done.result()
        )

    async def rescale(self, job_id: str, request: dto.RescaleRequest) -> dto.JobAction:
        self._require(job_id)
        try:
            self.jm.request_rescale(request.parallelism)
        except Exception as exc:
            raise gateway.GatewayConflict(str(exc)) from exc
        return dto.JobAction(
            job_id=job_id,
            state=self._state(),
            message=f"rescaling to parallelism {request.parallelism}: checkpoint, stop, "
            "redeploy with key groups redistributed",
        )

    async def cancel(self, job_id: str) -> dto.JobAction:
        self._require(job_id)
        if self._state().terminal:
            raise gateway.GatewayConflict(f"the job already ended ({self.jm.state.value})")
        self.jm.request_cancel()
        return dto.JobAction(job_id=job_id, state=self._state(), message="cancelling")

    async def task_managers(self) -> list[dto.TaskManagerInfo]:
        used = set(self.jm.placement.values())
        out = []
        for tm_id, info in self.jm.tms.items():
            if not info.alive:
                continue
            reg = info.registration
            busy = tm_id in used and not self._state().terminal
            out.append(
                dto.TaskManagerInfo(
                    id=tm_id,
                    address=f"{reg.data_host}:{reg.data_port}",
                    pid=0,
                    slots_total=reg.slots,
                    slots_free=0 if busy else reg.slots,
                    tasks_running=len((info.metrics or {}).get("tasks", [])) if busy else 0,
                    registered_at_ms=info.registered_at_ms,
                )
            )
        return out
