"""The HTTP client of a JobManager's REST API (the one module that talks HTTP with httpx).

``JobManagerClient(url)`` calls the routes of :mod:`streamjob.jobmanager.routes` and parses the
answers into the DTOs of :mod:`streamjob.jobmanager.dto`; the ``streamjob savepoint`` command
and (later) the operator use it. Errors are :class:`RestClientError`, carrying the HTTP status
and the server's messages, or naming the URL that could not be reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from streamjob import errors
from streamjob.jobmanager import dto

M = TypeVar("M", bound=BaseModel)


class RestClientError(errors.StreamJobError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class JobManagerClient:
    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _call(self, method: str, path: str, model: type[M], body: Any = None) -> M:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RestClientError(
                f"cannot reach the JobManager REST API at {self.url}{path} ({exc!r}): is the "
                "job running with --rest-port, and is the URL right?"
            ) from exc
        if response.status_code >= 400:
            raise RestClientError(
                f"{method} {self.url}{path} answered {response.status_code}: "
                + "; ".join(_messages(response)),
                status=response.status_code,
            )
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise RestClientError(
                f"{method} {self.url}{path} answered something that is not a streamjob "
                f"REST response ({exc})"
            ) from exc

    # -- routes ---------------------------------------------------------------------------
    async def overview(self) -> dto.ClusterOverview:
        return await self._call("GET", "/overview", dto.ClusterOverview)

    async def jobs(self) -> list[dto.JobSummary]:
        return (await self._call("GET", "/jobs", dto.JobList)).jobs

    async def job(self, job_id: str) -> dto.JobDetails:
        return await self._call("GET", f"/jobs/{job_id}", dto.JobDetails)

    async def checkpoints(self, job_id: str) -> dto.CheckpointStatistics:
        return await self._call("GET", f"/jobs/{job_id}/checkpoints", dto.CheckpointStatistics)

    async def trigger_savepoint(
        self, job_id: str, *, target_dir: str | None = None, stop: bool = False
    ) -> str:
        body = dto.SavepointTriggerRequest(target_dir=target_dir, stop=stop)
        answer = await self._call(
            "POST",
            f"/jobs/{job_id}/savepoints",
            dto.SavepointTriggerResponse,
            body.model_dump(exclude_none=True),
        )
        return answer.trigger_id

    async def savepoint_status(self, job_id: str, trigger_id: str) -> dto.SavepointStatus:
        return await self._call(
            "GET", f"/jobs/{job_id}/savepoints/{trigger_id}", dto.SavepointStatus
        )

    async def wait_for_savepoint(
        self,
        job_id: str,
        trigger_id: str,
        *,
        poll_s: float = 0.2,
        timeout_s: float = 600.0,
        on_poll: Callable[[dto.SavepointStatus, float], None] | None = None,
    ) -> dto.SavepointStatus:
        """Poll until the savepoint completed or failed; raises after ``timeout_s``."""
        started = time.monotonic()
        while True:
            status = await self.savepoint_status(job_id, trigger_id)
            elapsed = time.monotonic() - started
            if on_poll is not None:
                on_poll(status, elapsed)
            if status.status is not dto.OperationStatus.IN_PROGRESS:
                return status
            if elapsed > timeout_s:
                raise RestClientError(
                    f"savepoint {trigger_id} of job {job_id} still in progress after "
                    f"{timeout_s:.0f}s; it may still complete: poll "
                    f"{self.url}/jobs/{job_id}/savepoints/{trigger_id}"
                )
            await asyncio.sleep(poll_s)

    async def cancel(self, job_id: str) -> dto.JobAction:
        return await self._call("POST", f"/jobs/{job_id}/cancel", dto.JobAction)

    async def rescale(self, job_id: str, parallelism: int) -> dto.JobAction:
        return await self._call(
            "POST", f"/jobs/{job_id}/rescale", dto.JobAction, {"parallelism": parallelism}
        )


def _messages(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return [response.text.strip()[:500] or response.reason_phrase]
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [str(m) for m in body["errors"]]
    return [str(body)[:500]]
