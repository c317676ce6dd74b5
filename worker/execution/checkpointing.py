"""The checkpoint driver: triggers, acknowledgements, the commit and notifications of a job.

It drives a :class:`CheckpointCoordinator` (pure) against a :class:`DeploymentPort`: the local
runner's port posts to in-process tasks, the JobManager's port sends RPCs to TaskManagers.

1. ``tick()`` (every few ms): fail over on a fatal checkpoint failure, abort a timed-out
   checkpoint, trigger a requested savepoint, the final checkpoint once every source ended
   (FLIP-147), or a periodic one when due;
2. ``acknowledge()`` collects the tasks' snapshots; when all are in, ``_finalize`` writes
   ``_metadata`` with put-if-absent (the commit point) and then notifies the tasks;
3. ``decline()`` or a failed write aborts the checkpoint; beyond the tolerable count the job
   fails over (``failover`` is set and raised by the next ``tick``);
4. retention keeps the last N checkpoints and deletes the incremental files under ``shared/``
   that the :class:`SharedStateRegistry` says no retained or pending checkpoint can reference.
   :func:`start_attempt` rebuilds the registry from the retained ``_metadata`` before an
   attempt deploys (nothing is pending then, so unreferenced shared files are garbage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from streamjob import errors
from streamjob.checkpoint import layout
from streamjob.checkpoint.config import CheckpointConfig, CheckpointingMode
from streamjob.checkpoint.coordinator import CheckpointCoordinator, CompletedInfo, TaskKey
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.savepoints import SavepointRequest, assemble_metadata
from streamjob.checkpoint.shared_registry import SharedStateRegistry
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


@dataclass(frozen=True)
class AttemptStart:
    """What an attempt's driver starts from: the next checkpoint id and the shared files."""

    first_id: int
    registry: SharedStateRegistry | None


def start_attempt(store: CheckpointStore, restored_id: int | None) -> AttemptStart:
    """Before an attempt deploys: delete checkpoint directories that never completed, rebuild
    the shared-file registry (deleting unreferenced shared files) and pick the first id
    (ids keep increasing across attempts and runs). Blocking storage I/O."""
    listing = store.listing()
    if store.remove_garbage():
        log.info("removed checkpoint directories without _metadata")
    registry = rebuild_registry(store, listing.completed)
    return AttemptStart(max(listing.max_id, restored_id or 0) + 1, registry)


def collect_shared_garbage(store: CheckpointStore) -> None:
    """After an attempt ended (nothing pending): delete the shared files that only discarded
    checkpoints used. Best effort: the next attempt's start collects what this leaves."""
    try:
        rebuild_registry(store, store.listing().completed)
    except Exception as exc:
        log.warning("could not collect unreferenced shared files: %s", exc)


def rebuild_registry(store: CheckpointStore, completed: list[int]) -> SharedStateRegistry | None:
    """The shared-file registry from the retained checkpoints; shared files none of them
    references are deleted (call only while nothing is pending). None, and nothing deleted,
    if a retained ``_metadata`` cannot be read."""
    try:
        registry = SharedStateRegistry.rebuild(store.read(cid, verify=False) for cid in completed)
    except errors.CheckpointError as exc:
        log.warning("shared files are kept: a retained checkpoint is unreadable (%s)", exc)
        return None
    garbage = registry.unreferenced(store.shared_files())
    if garbage:
        log.info("deleting %d shared files no retained checkpoint references", len(garbage))
        store.delete_shared(garbage)
    return registry


class CheckpointDriver:
    def __init__(
        self,
        *,
        config: CheckpointConfig,
        store: CheckpointStore,
        job_id: str,
        graph: JobGraph,
        start: AttemptStart,
        port: DeploymentPort,
        executor: Executor,
        faults: FaultInjector,
        savepoint_storages: dict[str, CheckpointStorage],
        on_completed: Callable[[CompletedInfo], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.job_id = job_id
        self.graph = graph
        self.port = port
        self.executor = executor
        self.faults = faults
        self.coordinator = CheckpointCoordinator(config, first_id=start.first_id, now_ms=now_ms())
        self.registry = start.registry
        self.savepoint_storages = savepoint_storages
        self.on_completed = on_completed
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
            return self._savepoint_storage(target)
        return self.store.storage

    def _savepoint_storage(self, target: str) -> CheckpointStorage:
        """The storage of a savepoint's directory, opened once (on a cluster the JobManager
        writes only its ``_metadata``: the TaskManagers wrote the state in their processes)."""
        storage = self.savepoint_storages.get(target)
        if storage is None:
            storage = self.savepoint_storages[target] = open_storage(target)
        return storage

    # -- acknowledgements -------------------------------------------------------------------
    def acknowledge(self, checkpoint_id: int, task: TaskKey, snapshot: Any) -> None:
        if self.coordinator.acknowledge(checkpoint_id, task, snapshot):
            self._spawn(self._finalize(checkpoint_id))

    def task_finished(self, task: TaskKey) -> None:
        pending = self.coordinator.pending
        if self.coordinator.task_finished(task) and pending is not None:
            self._spawn(self._finalize(pending.checkpoint_id))

    def decline(
        self, checkpoint_id: int, task: TaskKey, reason: str, cause: BaseException | None = None
    ) -> None:
        log.warning("task %s declined checkpoint %d: %s", task, checkpoint_id, reason)
        self.abort(checkpoint_id, f"task {task} declined: {reason}", cause=cause)

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
                storage = self._savepoint_storage(target)
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
        if self.on_completed is not None:
            self.on_completed(completed)
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
            await loop.run_in_executor(self.executor, self._retain, meta)

    def _retain(self, meta: CheckpointMetadata) -> None:
        """Retain the last N checkpoints; delete the shared files nobody can reference now."""
        registry = self.registry
        if registry is not None:
            registry.register(
                meta.checkpoint_id, meta.shared_files(), floor=meta.incremental_floor()
            )
        discarded = self.store.retain(self.config.retained)
        if registry is not None:
            self.store.delete_shared(registry.release(discarded))

    async def drain(self, reason: str = "the attempt ended") -> None:
        """Wait for commits and retention in flight; a savepoint that can no longer complete
        fails with ``reason`` (its caller must not wait for ever)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        request = self.savepoint
        if request is not None:
            request.fail(
                f"the savepoint did not complete: {reason}; trigger it again once the job is "
                "RUNNING"
            )

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
