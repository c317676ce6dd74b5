"""The REST routes (DESIGN.md section 7): thin adapters from HTTP to a :class:`JobGateway`.

Each route parses its request, calls one gateway method and returns its DTO; errors are the
gateway's exceptions, mapped to statuses in :mod:`.app`. The gateway is ``app.state.gateway``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from streamjob.jobmanager import dto, metrics
from streamjob.jobmanager.gateway import JobGateway

router = APIRouter()

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": dto.ErrorResponse}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    404: {"model": dto.ErrorResponse},
    409: {"model": dto.ErrorResponse},
}


def _gateway(request: Request) -> JobGateway:
    gateway: JobGateway = request.app.state.gateway
    return gateway


Gateway = Annotated[JobGateway, Depends(_gateway)]


@router.get("/healthz", tags=["health"])
async def healthz() -> dto.Health:
    """Liveness: the JobManager's loop answers."""
    return dto.Health(status="ok")


@router.get("/readyz", tags=["health"], responses={503: {"model": dto.Health}})
async def readyz(gateway: Gateway, response: Response) -> dto.Health:
    """Readiness: the job is deployed (503 until then)."""
    health = await gateway.readiness()
    if health.status != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return health


@router.get("/metrics", tags=["health"], response_class=Response)
async def prometheus_metrics(gateway: Gateway) -> Response:
    """Prometheus text exposition: records per task, checkpoints, restarts, uptime."""
    return Response(await metrics.scrape(gateway), media_type=metrics.CONTENT_TYPE)


@router.get("/overview", tags=["cluster"])
async def overview(gateway: Gateway) -> dto.ClusterOverview:
    return await gateway.overview()


@router.get("/taskmanagers", tags=["cluster"])
async def taskmanagers(gateway: Gateway) -> dto.TaskManagerList:
    return dto.TaskManagerList(taskmanagers=await gateway.task_managers())


@router.get("/jobs", tags=["jobs"])
async def jobs(gateway: Gateway) -> dto.JobList:
    return dto.JobList(jobs=await gateway.jobs())


@router.get("/jobs/{job_id}", tags=["jobs"], responses=_NOT_FOUND)
async def job(job_id: str, gateway: Gateway) -> dto.JobDetails:
    """State, vertices with their subtasks and record counts, parallelism, restarts."""
    return await gateway.job(job_id)


@router.get("/jobs/{job_id}/checkpoints", tags=["checkpoints"], responses=_NOT_FOUND)
async def checkpoints(job_id: str, gateway: Gateway) -> dto.CheckpointStatistics:
    """Counts, the latest completed/savepoint/restored, size and duration summary, history."""
    return await gateway.checkpoints(job_id)


@router.post(
    "/jobs/{job_id}/savepoints",
    tags=["checkpoints"],
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_CONFLICT, 400: {"model": dto.ErrorResponse}},
)
async def trigger_savepoint(
    job_id: str, gateway: Gateway, request: dto.SavepointTriggerRequest | None = None
) -> dto.SavepointTriggerResponse:
    """Trigger a savepoint (``stop`` ends the job after it); poll its status by trigger id."""
    return await gateway.trigger_savepoint(job_id, request or dto.SavepointTriggerRequest())


@router.get("/jobs/{job_id}/savepoints/{trigger_id}", tags=["checkpoints"], responses=_NOT_FOUND)
async def savepoint_status(job_id: str, trigger_id: str, gateway: Gateway) -> dto.SavepointStatus:
    """IN_PROGRESS, COMPLETED (with its location) or FAILED (with the cause)."""
    return await gateway.savepoint_status(job_id, trigger_id)


@router.post(
    "/jobs/{job_id}/rescale",
    tags=["jobs"],
    status_code=status.HTTP_202_ACCEPTED,
    responses=_CONFLICT,
)
async def rescale(job_id: str, request: dto.RescaleRequest, gateway: Gateway) -> dto.JobAction:
    return await gateway.rescale(job_id, request)


@router.post(
    "/jobs/{job_id}/cancel",
    tags=["jobs"],
    status_code=status.HTTP_202_ACCEPTED,
    responses=_CONFLICT,
)
async def cancel(job_id: str, gateway: Gateway) -> dto.JobAction:
    return await gateway.cancel(job_id)
