"""Every call the operator makes to a JobManager, behind one interface (DESIGN.md section 7).

:class:`JobManagerService` is the Protocol the reconciler uses; :class:`HttpJobManagerClient` is
its httpx implementation (the only HTTP client module of the operator) and
:class:`~.testing.TestingJobManagerClient` the in-memory fake of the tests, as in
flink-kubernetes-operator. Answers are parsed into the REST DTOs of
:mod:`streamjob.jobmanager.dto`. A :data:`Connector` gives the client of one StreamJob's
JobManager: through its Service inside the cluster, or its pod IP (``--jobmanager-address
pod-ip``, for an operator outside the cluster network and for the local pod runner).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from streamjob.jobmanager import dto
from streamjob.operator.core import names, render

M = TypeVar("M", bound=BaseModel)


class JobManagerError(Exception):
    """A JobManager call failed: unreachable (``status`` None) or an HTTP error status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def not_found(self) -> bool:
        return self.status == 404


class JobManagerService(Protocol):
    async def jobs(self) -> list[dto.JobSummary]: ...

    async def job(self, job_id: str) -> dto.JobDetails: ...

    async def checkpoints(self, job_id: str) -> dto.CheckpointStatistics: ...

    async def trigger_savepoint(self, job_id: str, *, target_dir: str, stop: bool) -> str: ...

    async def savepoint_status(self, job_id: str, trigger_id: str) -> dto.SavepointStatus: ...

    async def rescale(self, job_id: str, parallelism: int) -> dto.JobAction: ...

    async def cancel(self, job_id: str) -> dto.JobAction: ...

    async def report_failed_taskmanager(self, pod_uid: str) -> None: ...

    async def aclose(self) -> None: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobManagerTarget:
    """Which JobManager: the StreamJob's name and namespace, and its pod's IP when known."""

    name: str
    namespace: str
    pod_ip: str | None = None


Connector = Callable[[JobManagerTarget], JobManagerService]


class HttpJobManagerClient:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, model: type[M] | None, body: Any = None
    ) -> M | None:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise JobManagerError(
                f"cannot reach the JobManager at {self.url}{path}: {exc!r}"
            ) from exc
        if response.status_code >= 400:
            raise JobManagerError(
                f"{method} {self.url}{path} answered {response.status_code}: {response.text[:300]}",
                status=response.status_code,
            )
        if model is None:
            return None
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise JobManagerError(f"{method} {self.url}{path}: unexpected answer ({exc})") from exc

    async def _get(self, path: str, model: type[M], body: Any = None, method: str = "GET") -> M:
        found = await self._call(method, path, model, body)
        assert found is not None
        return found

    async def jobs(self) -> list[dto.JobSummary]:
        return (await self._get("/jobs", dto.JobList)).jobs

    async def job(self, job_id: str) -> dto.JobDetails:
        return await self._get(f"/jobs/{job_id}", dto.JobDetails)

    async def checkpoints(self, job_id: str) -> dto.CheckpointStatistics:
        return await self._get(f"/jobs/{job_id}/checkpoints", dto.CheckpointStatistics)

    async def trigger_savepoint(self, job_id: str, *, target_dir: str, stop: bool) -> str:
        body = dto.SavepointTriggerRequest(target_dir=target_dir, stop=stop).model_dump()
        path = f"/jobs/{job_id}/savepoints"
        answer = await self._get(path, dto.SavepointTriggerResponse, body, method="POST")
        return answer.trigger_id

    async def savepoint_status(self, job_id: str, trigger_id: str) -> dto.SavepointStatus:
        return await self._get(f"/jobs/{job_id}/savepoints/{trigger_id}", dto.SavepointStatus)

    async def rescale(self, job_id: str, parallelism: int) -> dto.JobAction:
        body = dto.RescaleRequest(parallelism=parallelism).model_dump()
        return await self._get(f"/jobs/{job_id}/rescale", dto.JobAction, body, method="POST")

    async def cancel(self, job_id: str) -> dto.JobAction:
        return await self._get(f"/jobs/{job_id}/cancel", dto.JobAction, method="POST")

    async def report_failed_taskmanager(self, pod_uid: str) -> None:
        await self._call("POST", f"/taskmanagers/{pod_uid}/failed", None)


def http_connector(*, address: str = "service", timeout_s: float = 5.0) -> Connector:
    """Clients through the JobManager's Service (``service``) or its pod IP (``pod-ip``)."""
    if address not in ("service", "pod-ip"):
        raise ValueError(f"jobmanager address {address!r}: use service or pod-ip")

    def connect(target: JobManagerTarget) -> JobManagerService:
        if address == "pod-ip":
            if target.pod_ip is None:
                raise JobManagerError(f"the JobManager pod of {target.name} has no IP yet")
            url = f"http://{target.pod_ip}:{render.JOBMANAGER_REST_PORT}"
        else:
            url = names.jobmanager_url(target.name, target.namespace)
        return HttpJobManagerClient(url, timeout_s=timeout_s)

    return connect
