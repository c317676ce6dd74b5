"""Serving the REST API with uvicorn inside the job's own asyncio loop.

``RestServer(gateway, port=0)``: ``await start()`` binds 127.0.0.1 (port 0 picks a free one)
and serves ``uvicorn.Server.serve()`` as a task beside the job; ``await stop()`` shuts it down.
Uvicorn's own signal handling is disabled: the process owner (the CLI) decides what Ctrl-C means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from streamjob import errors
from streamjob.jobmanager.app import create_app
from streamjob.jobmanager.gateway import JobGateway

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave SIGINT/SIGTERM to the process owner


class RestServer:
    def __init__(self, gateway: JobGateway, *, host: str = LOCALHOST, port: int = 0) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        """Bind and start serving; returns the base URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise errors.StreamJobError(
                f"cannot serve the REST API on {self.host}:{self.port} ({exc.strerror}): "
                "choose another --rest-port, or 0 for a free one"
            ) from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.gateway),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = _Server(config)
        self._server = server
        self._task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()
                raise errors.StreamJobError(f"the REST server on {self.url} did not start")
            await asyncio.sleep(0.01)
        return self.url

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._server = self._task = None

    async def __aenter__(self) -> RestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
