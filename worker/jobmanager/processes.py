"""The JobManager and TaskManager processes: servers, signals, and the job's lifetime.

``streamjob jobmanager`` serves the REST API and the internal RPC on one port and runs the job
master; ``streamjob taskmanager`` serves its commands and health on one port, the data plane on
another, and registers with the JobManager. Both stop cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from streamjob.cluster.jobmaster import JobMaster
from streamjob.cluster.taskmanager import TaskManager
from streamjob.jobmanager import app as rest_app
from streamjob.jobmanager.cluster_gateway import ClusterGateway
from streamjob.jobmanager.internal_routes import internal_router, operator_router
from streamjob.jobmanager.taskmanager_app import create_app
from streamjob.jobstate import JobState

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    return uvicorn.Server(config)


def _on_signals(action: Any) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, action)


async def serve_jobmanager(jm: JobMaster, host: str, port: int, *, exit_on_end: bool) -> int:
    app = rest_app.create_app(ClusterGateway(jm))
    app.include_router(internal_router(jm))
    app.include_router(operator_router(jm))
    sock = bind(host, port)
    server = _server(app)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    print(f"[streamjob] JobManager on http://{host}:{sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    _on_signals(stop.set)
    job = asyncio.ensure_future(jm.run())
    await asyncio.wait({job, asyncio.ensure_future(stop.wait())}, return_when="FIRST_COMPLETED")
    if job.done():
        state = job.result()
        running = jm.running_time_s()
        print(
            f"[streamjob] job {jm.job_id} {state.value}"
            + ("" if running is None else f" (running time {running:.3f}s)"),
            flush=True,
        )
        if not exit_on_end:
            await stop.wait()
    else:
        jm.request_cancel()
        await asyncio.wait_for(job, 10)
        state = JobState.CANCELED
    await asyncio.sleep(0.2)  # let TaskManagers read the last answers
    server.should_exit = True
    await serving
    await jm.close()
    return 0 if state in (JobState.FINISHED, JobState.CANCELED) else 1


async def serve_taskmanager(
    *,
    jobmanager_url: str,
    host: str,
    rest_port: int,
    data_port: int,
    tm_id: str | None,
    heartbeat_interval_s: float,
    jm_timeout_s: float,
) -> int:
    sock = bind(host, rest_port)
    rest_url = f"http://{host}:{sock.getsockname()[1]}"
    tm = TaskManager(
        jobmanager_url=jobmanager_url,
        tm_id=tm_id,
        host=host,
        data_port=data_port,
        rest_url=rest_url,
        heartbeat_interval_s=heartbeat_interval_s,
        jm_timeout_s=jm_timeout_s,
    )
    server = _server(create_app(tm))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    stop = asyncio.Event()
    _on_signals(stop.set)
    await tm.start()
    print(
        f"[streamjob] TaskManager {tm.tm_id} on {rest_url}, data port {tm.server.port}", flush=True
    )
    await stop.wait()
    await tm.close()
    server.should_exit = True
    await serving
    return 0
