"""HTTP clients of the cluster's internal RPC (the only modules that speak HTTP to peers).

``JobManagerRpc``: TaskManager -> JobManager (register, acknowledge, decline, task state).
``TaskManagerRpc``: JobManager -> TaskManager (deploy, trigger, notify, stop, cancel).
``HeartbeatClient``: the heartbeat thread's blocking calls.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from streamjob import errors
from streamjob.cluster import messages

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class JobManagerRpc:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=TIMEOUT)

    async def register(self, registration: messages.Registration) -> str:
        response = await self._client.post("/internal/register", json=registration.__dict__)
        if response.status_code == 409:
            raise errors.StreamJobError(response.json().get("detail", response.text))
        response.raise_for_status()
        return str(response.json()["epoch"])

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        try:
            response = await self._client.post(path, json=body)
            if response.status_code >= 400:
                log.warning("JobManager refused %s: %s", path, response.text)
        except httpx.HTTPError as exc:
            log.warning("JobManager unreachable for %s: %s", path, exc)

    async def acknowledge(
        self, epoch: str, attempt: int, checkpoint_id: int, task: tuple[int, int], snapshot: Any
    ) -> None:
        await self._post(
            "/internal/ack",
            {
                "epoch": epoch,
                "attempt": attempt,
                "checkpoint_id": checkpoint_id,
                "task": list(task),
                "snapshot": snapshot,
            },
        )

    async def decline(
        self, epoch: str, attempt: int, checkpoint_id: int, task: tuple[int, int], reason: str
    ) -> None:
        await self._post(
            "/internal/decline",
            {
                "epoch": epoch,
                "attempt": attempt,
                "checkpoint_id": checkpoint_id,
                "task": list(task),
                "reason": reason,
            },
        )

    async def task_state(
        self, epoch: str, attempt: int, task: tuple[int, int], state: str, error: str | None
    ) -> None:
        await self._post(
            "/internal/task-state",
            {
                "epoch": epoch,
                "attempt": attempt,
                "task": list(task),
                "state": state,
                "error": error,
            },
        )

    async def close(self) -> None:
        await self._client.aclose()


class HeartbeatClient:
    """The heartbeat thread's blocking client: one connection pool for the thread's life (a
    new client per beat builds an SSL context each second, holding the GIL for milliseconds)."""

    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(3.0))

    def beat(self, tm_id: str, nonce: str, epoch: str, metrics: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(
            "/internal/heartbeat",
            json={"tm_id": tm_id, "nonce": nonce, "epoch": epoch, "metrics": metrics},
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self._client.close()


class TaskManagerRpc:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(timeout=TIMEOUT)

    async def health(self, rest_url: str) -> None:
        response = await self._client.get(rest_url.rstrip("/") + "/healthz", timeout=2.0)
        response.raise_for_status()

    async def call(self, rest_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._client.post(rest_url.rstrip("/") + path, json=body)
        if response.status_code >= 400:
            raise errors.StreamJobError(
                f"TaskManager at {rest_url} refused {path}: {response.status_code} {response.text}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    async def close(self) -> None:
        await self._client.aclose()


class RestPoller:
    """Blocking reads of a JobManager's REST API for progress lines and tests."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(5.0))

    def get(self, path: str) -> Any:
        response = self._client.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self._client.post(path, json=body or {}, timeout=30.0)

    def current_job(self) -> dict[str, Any] | None:
        """Details of the (single) job, or None while the JobManager is not answering."""
        try:
            jobs = self.get("/jobs")
            if isinstance(jobs, dict):
                jobs = jobs.get("jobs", [])
            if not jobs:
                return None
            job_id = jobs[0].get("id") or jobs[0].get("job_id")
            answer: dict[str, Any] = self.get(f"/jobs/{job_id}")
            return answer
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def close(self) -> None:
        self._client.close()
