"""The checkpoint driver: triggers, acknowledgements, the commit and notifications of a job.

It drives a :class:`CheckpointCoordinator` (pure) against a :class:`DeploymentPort`: the local
runner's port posts to in-process tasks, the JobManager's port sends RPCs to TaskManagers.

1. ``tick()`` (every few ms): fail over on a fatal checkpoint failure, abort a timed-out
   checkpoint, trigger a requested savepoint, the final checkpoint once every source ended
   (FLIP-147), or a periodic one when due;
2. ``acknowledge()`` collects the tasks' snapshots; when all are in, ``_finalize`` writes
   ``_metadata`` with put-if-absent (the commit point) and then notifies the tasks;
3. ``decline()`` or a failed write aborts the checkpoint; beyond the tolerable count the job
   fails over (``failover`` is set and raised by the next ``tick``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Any, Protocol

from streamjob import errors
from streamjob.checkpoint import layout
from streamjob.checkpoint.config import CheckpointConfig, CheckpointingMode
from streamjob.checkpoint.coordinator import CheckpointCoordinator, CompletedInfo, TaskKey
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.savepoints import SavepointRequest, assemble_metadata
from streamjob.checkpoint.store import CheckpointStore
from streamjob.runtime.events import CheckpointBarrier, CheckpointOptions
from streamjob.runtime.graph import JobGraph
from streamjob.storage.base import CheckpointStorage
from streamjob.storage.factory import open_storage

log = logging.getLogger(__name__)


class CheckpointFailover(Exception):
    """A checkpoint failure beyond the tolerable count: the attempt must end."""


class DeploymentPort(Protocol):
    """How the driver reaches the tasks of the current deployment attempt."""

    def live_tasks(self) -> set[TaskKey]: ...

    def all_sources_ended(self) -> bool: ...

    def trigger(self, barrier: CheckpointBarrier) -> None: ...

    def notify_complete(self, checkpoint_id: int) -> None: ...

    def notify_aborted(self, checkpoint_id: int) -> None: ...

    def stop(self) -> None:
        """End the attempt after a stop-with-savepoint (queued notifications first)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class CheckpointDriver:
    def __init__(
        self,
        *,
        config: CheckpointConfig,
        store: CheckpointStore,
        job_id: str,
        graph: JobGraph,
        first_id: int,
        port: DeploymentPort,
        executor: Executor,
        faults: FaultInjector,
        savepoint_storages: dict[str, CheckpointStorage],
    ) -> None:
        self.config = config
        self.store = store
        self.job_id = job_id
        self.graph = graph
        self.port = port
        self.executor = executor
        self.faults = faults
        self.coordinator = CheckpointCoordinator(config, first_id=first_id, now_ms=now_ms())
        self.savepoint_storages = savepoint_storages
        self.savepoint: SavepointRequest | None = None
        self.completed: list[CompletedInfo] = []
        self.failover: BaseException | None = None
        self.stopped = False
        self.stopped_at: str | None = None
        self._background: set[asyncio.Future[None]] = set()

    # -- ticking ---------------------------------------------------------------------------
    def tick(self) -> None:
        if self.failover is not None:
            raise CheckpointFailover(str(self.failover)) from self.failover
        coordinator = self.coordinator
        now = now_ms()
        timed_out = coordinator.timed_out(now)
        if timed_out is not None:
            self.abort(timed_out.checkpoint_id, "timed out")
            return
        if coordinator.pending is not None or not self.port.live_tasks():
            return
        request = self.savepoint
        if request is not None and not request.triggered:
            request.triggered = True
            request.checkpoint_id = self._trigger(request.options())
        elif self.port.all_sources_ended() or coordinator.due(now):
            self._trigger(CheckpointOptions(aligned=self._aligned()))

    def _aligned(self) -> bool:
        return self.config.mode is CheckpointingMode.EXACTLY_ONCE

    def _trigger(self, options: CheckpointOptions) -> int:
        pending = self.coordinator.trigger(now_ms(), self.port.live_tasks(), options)
        self.port.trigger(CheckpointBarrier(pending.checkpoint_id, pending.timestamp_ms, options))
        return pending.checkpoint_id

    def storage_for(self, barrier: CheckpointBarrier) -> CheckpointStorage:
        target = barrier.options.target
        if barrier.options.kind.value == "savepoint" and target is not None:
            storage = self.savepoint_storages.get(target)
            if storage is None:
                storage = self.savepoint_storages[target] = open_storage(target)
            return storage
        return self.store.storage

    # -- acknowledgements -------------------------------------------------------------------
    def acknowledge(self, checkpoint_id: int, task: TaskKey, snapshot: Any) -> None:
        if self.coordinator.acknowledge(checkpoint_id, task, snapshot):
            self._spawn(self._finalize(checkpoint_id))

    def task_finished(self, task: TaskKey) -> None:
        pending = self.coordinator.pending
        if self.coordinator.task_finished(task) and pending is not None:
            self._spawn(self._finalize(pending.checkpoint_id))

    def decline(self, checkpoint_id: int, task: TaskKey, reason: str) -> None:
        log.warning("task %s declined checkpoint %d: %s", task, checkpoint_id, reason)
        self.abort(checkpoint_id, f"task {task} declined: {reason}")

    def abort(self, checkpoint_id: int, reason: str, cause: BaseException | None = None) -> None:
        coordinator = self.coordinator
        pending = coordinator.pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            return
        if pending.is_savepoint and self.savepoint is not None:
            self.savepoint.fail(f"savepoint {checkpoint_id} failed: {reason}")
        must_fail = coordinator.abort(checkpoint_id, reason)
        self.port.notify_aborted(checkpoint_id)
        if must_fail:
            failure = errors.CheckpointError(
                f"checkpoint {checkpoint_id} failed ({reason}) and the tolerable checkpoint "
                f"failure count is {coordinator.config.tolerable_failures}"
            )
            failure.__cause__ = cause
            self.failover = failure

    def _spawn(self, coro: Any) -> None:
        future = asyncio.ensure_future(coro)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def _finalize(self, checkpoint_id: int) -> None:
        coordinator = self.coordinator
        pending = coordinator.pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            return
        loop = asyncio.get_running_loop()
        meta = assemble_metadata(
            job_id=self.job_id, pending=pending, graph=self.graph, now_ms=now_ms()
        )
        try:
            if pending.is_savepoint:
                target = pending.options.target
                assert target is not None
                storage = self.savepoint_storages[target]
                committed = await loop.run_in_executor(
                    self.executor, storage.put_if_absent, layout.METADATA, meta.to_bytes()
                )
                path = target
            else:
                committed = await loop.run_in_executor(self.executor, self.store.commit, meta)
                path = self.store.describe(checkpoint_id)
        except Exception as exc:
            self.abort(checkpoint_id, f"writing _metadata failed: {exc}", cause=exc)
            return
        if not committed:
            # Another JobManager committed this id: notify nobody.
            self.abort(checkpoint_id, "_metadata already existed (lost the commit race)")
            return
        completed = CompletedInfo(
            checkpoint_id=checkpoint_id,
            timestamp_ms=pending.timestamp_ms,
            duration_ms=meta.duration_ms,
            size_bytes=meta.total_size(),
            kind=pending.options.kind,
            path=path,
        )
        coordinator.complete(checkpoint_id, completed, now_ms())
        self.completed.append(completed)
        try:
            self.faults.hit("after_metadata", checkpoint_id=checkpoint_id)
        except Exception as exc:
            self.failover = exc
            return
        request = self.savepoint
        if request is not None and request.checkpoint_id == checkpoint_id:
            request.complete(path)
        if pending.is_savepoint and not pending.options.stop:
            return  # an intermediate savepoint commits nothing
        self.port.notify_complete(checkpoint_id)
        if pending.options.stop:
            self.stopped = True
            self.stopped_at = path
            self.port.stop()
        if not pending.is_savepoint:
            await loop.run_in_executor(self.executor, self.store.retain, self.config.retained)

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- savepoints and stops ------------------------------------------------------------------
    def request_stop_checkpoint(self) -> SavepointRequest:
        """A regular checkpoint, then stop the tasks (rescale: redeploy from it)."""
        if self.savepoint is not None and not self.savepoint.done.done():
            raise errors.CheckpointError("a savepoint or stop is already in progress")
        self.savepoint = SavepointRequest(location="", stop=True, checkpoint=True)
        return self.savepoint

    def request_savepoint(self, target_dir: str, *, stop: bool, drain: bool) -> SavepointRequest:
        if self.savepoint is not None and not self.savepoint.done.done():
            raise errors.CheckpointError("a savepoint is already in progress")
        location = (
            f"{target_dir.rstrip('/')}/"
            f"{layout.savepoint_name(self.job_id, self.coordinator.next_id)}"
        )
        self.savepoint = SavepointRequest(location=location, stop=stop, drain=drain)
        return self.savepoint
