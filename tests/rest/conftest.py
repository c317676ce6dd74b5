"""Fixtures of the REST tests: a real local job behind a gateway, and an ASGI client on it.

``start_job(...)`` builds a keyed-count job (a rate-limited generator, ``key_by``, a count
per key in ValueState), starts it through :class:`LocalRunnerGateway` in the test's own loop
and returns a :class:`RunningJob` whose ``http`` client talks to the FastAPI app in-process
(``httpx.ASGITransport``). Every job is cancelled and awaited at teardown; a ``hold`` gate
blocks state uploads (in the upload threads) so a test can see a checkpoint in progress;
``hold_uploads()`` returns once one is really stuck.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamjob import GeneratorSource, StreamEnvironment
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import RestartStrategy
from streamjob.connectors.basic_sinks import DiscardingSink
from streamjob.execution.local_job import LocalJobRunner
from streamjob.functions import KeyedProcessFunction, MapFunction, RuntimeContext
from streamjob.jobmanager.app import create_app
from streamjob.jobmanager.gateway import LocalRunnerGateway
from streamjob.state import ValueStateDescriptor


class CountPerKey(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        return ((value[0], n),)


class Shared:
    """State shared by every copy of a function (functions are deep-copied per subtask)."""

    def __init__(self) -> None:
        self.fired = False
        self.checkpoints = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self


class FailAt(MapFunction):
    """Raises at the first record >= ``at`` (once, or on every attempt), optionally only
    after a checkpoint completed (so a restart really restores one)."""

    def __init__(
        self, at: int | None, *, once: bool, after_checkpoint: bool, shared: Shared
    ) -> None:
        self.at = at
        self.once = once
        self.after_checkpoint = after_checkpoint
        self.shared = shared

    def map(self, value: Any) -> Any:
        shared = self.shared
        if (
            self.at is not None
            and value[1] >= self.at
            and not (self.once and shared.fired)
            and (not self.after_checkpoint or shared.checkpoints > 0)
        ):
            shared.fired = True
            raise RuntimeError(f"boom at record {value[1]}")
        return value


def keyed_job(
    *,
    count: int | None,
    rate: float,
    fail_at: int | None = None,
    once: bool = True,
    after_checkpoint: bool = False,
    shared: Shared | None = None,
) -> Callable[[StreamEnvironment], None]:
    failing = FailAt(
        fail_at, once=once, after_checkpoint=after_checkpoint, shared=shared or Shared()
    )

    def build(env: StreamEnvironment) -> None:
        source = GeneratorSource(lambda i: (f"k{i % 17}", i), count=count, rate_per_second=rate)
        (
            env.from_source(source, source_name="numbers")
            .uid("numbers")
            .map(failing, name="Check")
            .uid("check")
            .key_by(lambda r: r[0])
            .process(CountPerKey(), name="Count")
            .uid("count")
            .sink_to(DiscardingSink())
            .uid("sink")
        )

    return build


@dataclass
class RunningJob:
    runner: LocalJobRunner
    gateway: LocalRunnerGateway
    http: httpx.AsyncClient
    task: asyncio.Task[Any] | None = None
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    #: set once an upload is blocked by ``hold``: the pending checkpoint cannot complete
    blocked: threading.Event = field(default_factory=threading.Event)

    async def hold_uploads(self) -> None:
        """Block state uploads and return once a checkpoint is stuck mid-upload."""
        self.hold.set()
        await self.until(self.blocked.is_set)

    @property
    def job_id(self) -> str:
        return self.gateway.job_id

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; job state {self.gateway.state}")
            await asyncio.sleep(0.01)

    def completed_checkpoints(self) -> int:
        result = self.runner.result
        return len(result.checkpoints) if result is not None else 0

    async def get(self, path: str) -> Any:
        response = await self.http.get(path)
        assert response.status_code == 200, response.text
        return response.json()


StartJob = Callable[..., Awaitable[RunningJob]]


@pytest.fixture
async def start_job(tmp_path: Path) -> AsyncIterator[StartJob]:
    started: list[RunningJob] = []

    async def start(
        *,
        count: int | None = None,
        rate: float = 4000,
        parallelism: int = 2,
        checkpoint: bool = True,
        fail_at: int | None = None,
        once: bool = True,
        after_checkpoint: bool = False,
        restart: RestartStrategy | None = None,
        savepoint_dir: str | None = None,
        begin: bool = True,
        wait_checkpoints: int = 1,
    ) -> RunningJob:
        env = StreamEnvironment(parallelism=parallelism)
        shared = Shared()
        keyed_job(
            count=count,
            rate=rate,
            fail_at=fail_at,
            once=once,
            after_checkpoint=after_checkpoint,
            shared=shared,
        )(env)
        if checkpoint:
            env.configure_checkpoints(directory=str(tmp_path / "chk"), interval_ms=100)
        if restart is not None:
            env.set_restart_strategy(restart)
        faults = FaultInjector()
        faults.observe("after_metadata", lambda context: setattr(shared, "checkpoints", 1))
        runner = env.create_runner(faults=faults)
        gateway = LocalRunnerGateway(runner, name="keyed-count", savepoint_dir=savepoint_dir)
        transport = httpx.ASGITransport(app=create_app(gateway))
        http = httpx.AsyncClient(transport=transport, base_url="http://jobmanager")
        job = RunningJob(runner, gateway, http)

        def gate(context: dict[str, Any]) -> None:
            if job.hold.is_set():
                job.blocked.set()
                job.release.wait(timeout=30)

        faults.observe("mid_upload", gate)
        started.append(job)
        if begin:
            job.task = gateway.start()
            if checkpoint and wait_checkpoints:
                await job.until(lambda: job.completed_checkpoints() >= wait_checkpoints)
            else:
                await job.until(lambda: gateway.state.value != "CREATED")
        return job

    yield start
    for job in started:
        job.release.set()
        if job.task is not None and not job.task.done():
            job.gateway.request_cancel()
            await asyncio.wait({job.task}, timeout=15)
        if job.task is not None and job.task.done() and not job.task.cancelled():
            job.task.exception()  # retrieved: no "never retrieved" warning
        await job.gateway.close()
        await job.http.aclose()
