"""The JobManager's internal RPC routes (TaskManagers call these), as a FastAPI router.

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

    @router.post("/taskmanagers/{pod_uid}/failed")
    async def failed(pod_uid: str) -> dict[str, Any]:
        if not jm.report_failed(pod_uid):
            raise HTTPException(404, f"no live TaskManager runs in pod {pod_uid}")
        return {"ok": True}

    return router


class RescaleBody(BaseModel):
    parallelism: int


class SavepointBody(BaseModel):
    target_dir: str
    stop: bool = False


def public_router(jm: JobMaster) -> APIRouter:
    """The subset of the REST API the cluster serves itself (health, job, actions)."""
    router = APIRouter()
    triggers: dict[str, Any] = {}

    def require(job_id: str) -> None:
        if job_id != jm.job_id:
            raise HTTPException(404, f"unknown job {job_id!r}; this JobManager runs {jm.job_id!r}")

    @router.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "epoch": jm.epoch}

    @router.get("/readyz")
    async def readyz() -> dict[str, Any]:
        if not jm.job_id:
            raise HTTPException(503, "starting")
        return {"status": "ready", "job_state": jm.state.value}

    @router.get("/jobs")
    async def jobs() -> list[dict[str, Any]]:
        return [{"id": jm.job_id, "state": jm.state.value}]

    @router.get("/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, Any]:
        require(job_id)
        return job_view(jm)

    @router.get("/jobs/{job_id}/checkpoints")
    async def checkpoints(job_id: str) -> dict[str, Any]:
        require(job_id)
        done = list(jm.completed) + ([] if jm.driver is None else list(jm.driver.completed))
        return {
            "completed": len(done),
            "failed": 0 if jm.driver is None else jm.driver.coordinator.num_failed,
            "latest": None if not done else _completed_view(done[-1]),
            "history": [_completed_view(c) for c in done[-10:]],
        }

    @router.post("/jobs/{job_id}/rescale")
    async def rescale(job_id: str, body: RescaleBody) -> dict[str, Any]:
        require(job_id)
        try:
            jm.request_rescale(body.parallelism)
        except Exception as exc:
            raise HTTPException(409, str(exc)) from exc
        return {"job_id": job_id, "action": "rescale", "parallelism": body.parallelism}

    @router.post("/jobs/{job_id}/cancel")
    async def cancel(job_id: str) -> dict[str, Any]:
        require(job_id)
        jm.request_cancel()
        return {"job_id": job_id, "action": "cancel"}

    @router.post("/jobs/{job_id}/savepoints")
    async def savepoint(job_id: str, body: SavepointBody) -> dict[str, Any]:
        require(job_id)
        try:
            done = await jm.trigger_savepoint(body.target_dir, stop=body.stop)
        except Exception as exc:
            raise HTTPException(409, str(exc)) from exc
        trigger_id = f"sp-{len(triggers) + 1}"
        triggers[trigger_id] = done
        return {"trigger_id": trigger_id}

    @router.get("/jobs/{job_id}/savepoints/{trigger_id}")
    async def savepoint_status(job_id: str, trigger_id: str) -> dict[str, Any]:
        require(job_id)
        done = triggers.get(trigger_id)
        if done is None:
            raise HTTPException(404, f"unknown savepoint trigger {trigger_id!r}")
        if not done.done():
            return {"status": "IN_PROGRESS"}
        if done.exception() is not None:
            return {"status": "FAILED", "failure": str(done.exception())}
        return {"status": "COMPLETED", "location": done.result()}

    @router.get("/taskmanagers")
    async def taskmanagers() -> list[dict[str, Any]]:
        return [
            {
                "id": tm_id,
                "pod_uid": info.registration.pod_uid,
                "alive": info.alive,
                "lost_reason": info.lost_reason,
                "data": f"{info.registration.data_host}:{info.registration.data_port}",
                "metrics": info.metrics,
            }
            for tm_id, info in jm.tms.items()
        ]

    return router


def _completed_view(c: Any) -> dict[str, Any]:
    return {
        "id": c.checkpoint_id,
        "path": c.path,
        "size_bytes": c.size_bytes,
        "duration_ms": c.duration_ms,
        "timestamp_ms": c.timestamp_ms,
        "kind": c.kind.value,
    }


def job_view(jm: JobMaster) -> dict[str, Any]:
    graph = jm.graph
    return {
        "id": jm.job_id,
        "state": jm.state.value,
        "attempt": jm.attempt,
        "restarts": jm.restarts,
        "failure": jm.failure,
        "failures": jm.failures[-10:],
        "parallelism": None if graph is None else max(v.parallelism for v in graph.vertices),
        "restored_from": jm.restored_from,
        "restored_checkpoint_id": jm.restored_checkpoint_id,
        "vertices": []
        if graph is None
        else [
            {
                "id": v.id,
                "name": v.name,
                "parallelism": v.parallelism,
                "max_parallelism": v.max_parallelism,
            }
            for v in graph.vertices
        ],
        "tasks": {messages.task_key_text(*k): s for k, s in jm.task_states.items()},
        "placement": jm.placement,
    }
