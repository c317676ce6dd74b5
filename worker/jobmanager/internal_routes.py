"""The JobManager's internal RPC routes (TaskManagers and the operator call these).

Thin adapters over :class:`JobMaster`; stale (epoch, attempt) messages answer 409 so the
sender knows it is fenced off.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from streamjob.cluster import messages
from streamjob.cluster.jobmaster import JobMaster


class RegisterBody(BaseModel):
    tm_id: str
    nonce: str
    pod_uid: str
    data_host: str
    data_port: int
    rest_url: str
    slots: int = 1


class HeartbeatBody(BaseModel):
    tm_id: str
    nonce: str
    epoch: str
    metrics: dict[str, Any] = {}


class AckBody(BaseModel):
    epoch: str
    attempt: int
    checkpoint_id: int
    task: list[int]
    snapshot: dict[str, Any]


class DeclineBody(BaseModel):
    epoch: str
    attempt: int
    checkpoint_id: int
    task: list[int]
    reason: str


class TaskStateBody(BaseModel):
    epoch: str
    attempt: int
    task: list[int]
    state: str
    error: str | None = None


def internal_router(jm: JobMaster) -> APIRouter:
    router = APIRouter(prefix="/internal", tags=["internal"])

    @router.post("/register")
    async def register(body: RegisterBody) -> dict[str, Any]:
        return {"epoch": jm.register(messages.Registration(**body.model_dump()))}

    @router.post("/heartbeat")
    async def heartbeat(body: HeartbeatBody) -> dict[str, Any]:
        return jm.heartbeat(body.tm_id, body.nonce, body.epoch, body.metrics)

    @router.post("/ack")
    async def ack(body: AckBody) -> dict[str, Any]:
        task = (body.task[0], body.task[1])
        if not jm.acknowledge(body.epoch, body.attempt, body.checkpoint_id, task, body.snapshot):
            raise HTTPException(409, "stale acknowledgement (epoch or attempt): dropped")
        return {"ok": True}

    @router.post("/decline")
    async def decline(body: DeclineBody) -> dict[str, Any]:
        task = (body.task[0], body.task[1])
        if not jm.decline(body.epoch, body.attempt, body.checkpoint_id, task, body.reason):
            raise HTTPException(409, "stale decline (epoch or attempt): dropped")
        return {"ok": True}

    @router.post("/task-state")
    async def task_state(body: TaskStateBody) -> dict[str, Any]:
        task = (body.task[0], body.task[1])
        if not jm.task_state(body.epoch, body.attempt, task, body.state, body.error):
            raise HTTPException(409, "stale task state (epoch or attempt): dropped")
        return {"ok": True}

    return router


def operator_router(jm: JobMaster) -> APIRouter:
    """What the Kubernetes operator calls besides the public REST API."""
    router = APIRouter(tags=["operator"])

    @router.get("/internal/taskmanagers")
    async def taskmanagers() -> list[dict[str, Any]]:
        """Every TaskManager ever registered, with pod uid, liveness and live task metrics."""
        return [
            {
                "id": tm_id,
                "pod_uid": info.registration.pod_uid,
                "alive": info.alive,
                "lost_reason": info.lost_reason,
                "data": f"{info.registration.data_host}:{info.registration.data_port}",
                "rest_url": info.registration.rest_url,
                "metrics": info.metrics,
            }
            for tm_id, info in jm.tms.items()
        ]

    @router.post("/taskmanagers/{pod_uid}/failed")
    async def failed(pod_uid: str) -> dict[str, Any]:
        if not jm.report_failed(pod_uid):
            raise HTTPException(404, f"no live TaskManager runs in pod {pod_uid}")
        return {"ok": True}

    return router
