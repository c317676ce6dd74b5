"""Runs a whole job graph in this process: every subtask on one asyncio loop.

Used by ``run_local`` in tests, by ``env.execute()`` and by the benchmarks. Channels are
in-memory (:class:`LocalChannel`), so records are never serialized. The first failing subtask
fails the job: the others are cancelled and the failure is raised as ``JobFailedError``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from streamjob import errors
from streamjob.runtime.channels import LocalChannel
from streamjob.runtime.config import ExecutionConfig
from streamjob.runtime.deploy import ChannelFactory, build_task
from streamjob.runtime.graph import JobEdge, JobGraph
from streamjob.runtime.task import Task, TaskCancelled

log = logging.getLogger(__name__)


class LocalChannels:
    def __init__(self, credits: int) -> None:
        self.credits = credits
        self.channels: dict[tuple[int, int, int], LocalChannel] = {}

    def _get(self, edge: JobEdge, i: int, j: int) -> LocalChannel:
        key = (edge.id, i, j)
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = LocalChannel(self.credits, f"e{edge.id}:{i}->{j}")
        return channel

    def output_channel(self, edge: JobEdge, source_index: int, target_index: int) -> LocalChannel:
        return self._get(edge, source_index, target_index)

    def input_channel(self, edge: JobEdge, source_index: int, target_index: int) -> LocalChannel:
        return self._get(edge, source_index, target_index)


@dataclass
class Progress:
    elapsed_s: float
    records_in: int
    records_out: int
    source_records: int


@dataclass
class JobResult:
    duration_s: float
    tasks: list[Task]

    @property
    def source_records(self) -> int:
        return sum(t.records_out for t in self.tasks if t.gate is None)


class LocalExecutor:
    def __init__(
        self,
        graph: JobGraph,
        config: ExecutionConfig | None = None,
        *,
        channels: ChannelFactory | None = None,
        subtasks: Iterable[tuple[int, int]] | None = None,
    ) -> None:
        """Build ``subtasks`` ((vertex id, index); default: all) over ``channels`` (default:
        in-memory pairs; the TCP factory must be prepared first)."""
        self.graph = graph
        self.config = config or ExecutionConfig()
        self.channels = channels or LocalChannels(self.config.credits)
        wanted = None if subtasks is None else set(subtasks)
        self.tasks: list[Task] = []
        for vertex in graph.vertices:
            for index in range(vertex.parallelism):
                if wanted is None or (vertex.id, index) in wanted:
                    self.tasks.append(build_task(graph, vertex, index, self.channels, self.config))

    def progress(self, started: float) -> Progress:
        return Progress(
            elapsed_s=time.monotonic() - started,
            records_in=sum(t.records_in for t in self.tasks),
            records_out=sum(t.records_out for t in self.tasks),
            source_records=sum(t.records_out for t in self.tasks if t.gate is None),
        )

    async def run(
        self,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval_s: float = 2.0,
    ) -> JobResult:
        started = time.monotonic()
        runs = [asyncio.create_task(t.run(), name=t.name) for t in self.tasks]
        reporter = None
        if on_progress is not None:
            reporter = asyncio.create_task(self._report(on_progress, started, progress_interval_s))
        try:
            await self._wait(runs)
        finally:
            if reporter is not None:
                reporter.cancel()
        return JobResult(time.monotonic() - started, self.tasks)

    async def _report(
        self, on_progress: Callable[[Progress], None], started: float, interval: float
    ) -> None:
        while True:
            await asyncio.sleep(interval)
            on_progress(self.progress(started))

    async def _wait(self, runs: list[asyncio.Task[None]]) -> None:
        pending = set(runs)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in done if not t.cancelled() and t.exception() is not None]
            if failed:
                first = failed[0].exception()
                assert first is not None
                for task in self.tasks:
                    task.cancel()
                for run in pending:
                    run.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                if isinstance(first, TaskCancelled):
                    raise errors.JobCancelledError("the job was cancelled") from first
                raise errors.JobFailedError(
                    f"job failed in task '{failed[0].get_name()}': {first}"
                ) from first

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()

    def stop(self) -> None:
        """Cancel every task once its queued mail has run."""
        for task in self.tasks:
            task.stop()
