"""The TaskManager's HTTP endpoints: the JobManager's commands, health and metrics.

Commands carry (epoch, attempt); a stale one answers 409 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from streamjob import errors
from streamjob.cluster import messages
from streamjob.cluster.taskmanager import TaskManager


class Fenced(BaseModel):
    epoch: str
    attempt: int | None = None


class TriggerBody(Fenced):
    barrier: dict[str, Any]


class NotifyBody(Fenced):
    checkpoint_id: int
    complete: bool


def create_app(tm: TaskManager) -> FastAPI:
    app = FastAPI(title=f"streamjob TaskManager {tm.tm_id}")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "tm_id": tm.tm_id, "registered": tm.epoch is not None}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        lines = []
        for task in tm.metrics()["tasks"]:
            labels = f'task="{task["name"]}",tm="{tm.tm_id}"'
            lines.append(f"streamjob_task_records_in_total{{{labels}}} {task['records_in']}")
            lines.append(f"streamjob_task_records_out_total{{{labels}}} {task['records_out']}")
            lines.append(
                f"streamjob_task_backpressured_seconds_total{{{labels}}} {task['backpressured_s']}"
            )
            lines.append(f"streamjob_task_state_bytes{{{labels}}} {task['state_bytes']}")
        return "\n".join(lines) + "\n"

    @app.post("/tm/deploy")
    async def deploy(body: dict[str, Any]) -> dict[str, Any]:
        try:
            await tm.deploy(messages.Deployment.from_json(body))
        except errors.StreamJobError as exc:
            raise HTTPException(409, str(exc)) from exc
        except (OSError, TimeoutError) as exc:  # a peer's data port is unreachable
            raise HTTPException(503, f"cannot connect the data channels: {exc}") from exc
        return {"ok": True}

    @app.post("/tm/trigger")
    async def trigger(body: TriggerBody) -> dict[str, Any]:
        assert body.attempt is not None
        if not tm.trigger(body.epoch, body.attempt, messages.barrier_from_json(body.barrier)):
            raise HTTPException(409, "stale trigger")
        return {"ok": True}

    @app.post("/tm/notify")
    async def notify(body: NotifyBody) -> dict[str, Any]:
        assert body.attempt is not None
        if not tm.notify(body.epoch, body.attempt, body.checkpoint_id, body.complete):
            raise HTTPException(409, "stale notification")
        return {"ok": True}

    @app.post("/tm/stop")
    async def stop(body: Fenced) -> dict[str, Any]:
        if body.attempt is None or not tm.stop_tasks(body.epoch, body.attempt):
            raise HTTPException(409, "stale stop")
        return {"ok": True}

    @app.post("/tm/cancel")
    async def cancel(body: Fenced) -> dict[str, Any]:
        if not tm.cancel(body.epoch, body.attempt):
            raise HTTPException(409, "stale cancel")
        return {"ok": True}

    return app
