"""The job runner: attempts, the start rule, checkpoints and failover, in one process.

One run of a job (DESIGN.md sections 6 and 7):

1. open the checkpoint storage and probe it (exactly-once needs put-if-absent);
2. per attempt, apply the start rule: the latest completed checkpoint under this job's id
   wins, else the savepoint given, else empty state; build the graph (adopting the
   checkpoint's max parallelism), deploy the tasks and restore them before they open;
3. trigger checkpoints periodically (and at once when every source has ended, so the final
   transactions commit: FLIP-147); commit each by writing ``_metadata`` with put-if-absent,
   then notify the tasks; retain the last N, and delete the incremental files under
   ``shared/`` that the :class:`SharedStateRegistry` says no retained or pending checkpoint
   can reference (rebuilt from the retained ``_metadata`` files when an attempt starts and
   ends, when nothing is pending and unreferenced shared files are garbage);
4. when a task fails, ask the restart strategy; restart from the latest completed checkpoint,
   or fail the job with the cause.

The same coordinator logic serves the JobManager of the distributed runtime.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from streamjob import errors
from streamjob.checkpoint import layout
from streamjob.checkpoint.config import CheckpointConfig, CheckpointingMode
from streamjob.checkpoint.coordinator import CheckpointCoordinator, CompletedInfo, PendingCheckpoint
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.operator_state import SPLITS
from streamjob.checkpoint.restoring import RestoreStats, check_restorable, restore_task
from streamjob.checkpoint.savepoints import SavepointRequest, assemble_metadata
from streamjob.checkpoint.shared_registry import SharedStateRegistry
from streamjob.checkpoint.snapshotting import SubtaskSnapshot, TaskCheckpointer
from streamjob.checkpoint.store import CheckpointStore
from streamjob.execution.graphs import GraphBuilder
from streamjob.execution.restart import RestartStrategy, default_restart_strategy
from streamjob.execution.results import AttemptInfo, JobRunResult
from streamjob.runtime.config import ExecutionConfig
from streamjob.runtime.events import CheckpointBarrier, CheckpointKind, CheckpointOptions
from streamjob.runtime.graph import JobGraph
from streamjob.runtime.local_executor import LocalExecutor, Progress
from streamjob.runtime.task import Task
from streamjob.storage.base import CheckpointStorage
from streamjob.storage.factory import open_storage

log = logging.getLogger(__name__)

TICK_S = 0.02


class _JobFailover(Exception):
    """The current attempt must end (a checkpoint failure beyond the tolerable count)."""


class LocalJobRunner:
    def __init__(
        self,
        build_graph: GraphBuilder,
        config: ExecutionConfig,
        *,
        checkpoint: CheckpointConfig | None = None,
        restart: RestartStrategy | None = None,
        faults: FaultInjector | None = None,
        storage: CheckpointStorage | None = None,
        wrap_storage: Callable[[CheckpointStorage], CheckpointStorage] | None = None,
    ) -> None:
        self.build_graph = build_graph
        self.config = config
        self.checkpoint = checkpoint
        self.restart = restart or default_restart_strategy(checkpointing=checkpoint is not None)
        self.faults = faults or FaultInjector()
        self._root_storage = storage
        self._wrap = wrap_storage or (lambda storage: storage)
        self.job_id = ""
        self.store: CheckpointStore | None = None
        self.coordinator: CheckpointCoordinator | None = None
        self.executor: LocalExecutor | None = None
        self.result: JobRunResult | None = None
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ckpt-upload")
        self._savepoint_storages: dict[str, CheckpointStorage] = {}
        self._checkpointers: dict[tuple[int, int], TaskCheckpointer] = {}
        self._failover: BaseException | None = None
        self._savepoint: SavepointRequest | None = None
        self._stop_after: int | None = None
        self._stopped = False
        self._run_nonce = uuid.uuid4().hex[:8]
        self._background: set[asyncio.Future[None]] = set()
        self._registry: SharedStateRegistry | None = None

    # -- set-up ---------------------------------------------------------------------------
    def _open_storage(self) -> None:
        cfg = self.checkpoint
        if cfg is None:
            return
        root = self._wrap(self._root_storage or open_storage(cfg.directory))
        if cfg.mode is CheckpointingMode.EXACTLY_ONCE and not cfg.allow_unsafe_storage:
            caps = root.probe()
            if not caps.put_if_absent_safe:
                raise errors.CheckpointError(
                    f"checkpoint storage {root.describe()} does not honour put-if-absent, so two "
                    "JobManagers could both commit a checkpoint and exactly-once cannot be "
                    "guaranteed. Use storage that supports conditional writes (S3, SeaweedFS, "
                    "a local directory), or opt out with --allow-unsafe-storage."
                )
        self.job_id = cfg.job_id or layout.derive_job_id(root.url)
        self.store = CheckpointStore(root.child(self.job_id), self.job_id)

    def _start_point(
        self,
    ) -> tuple[CheckpointMetadata | None, CheckpointStorage | None, str | None]:
        """The start rule: my latest completed checkpoint, else the savepoint, else empty."""
        cfg = self.checkpoint
        if cfg is None or self.store is None or not cfg.restore:
            return None, None, None
        latest = self.store.latest(allow_fallback=cfg.allow_checkpoint_fallback)
        if latest is not None:
            return latest, self.store.storage, self.store.describe(latest.checkpoint_id)
        if cfg.from_savepoint:
            storage = self._wrap(open_storage(cfg.from_savepoint))
            data = storage.get(layout.METADATA)
            meta = CheckpointMetadata.from_bytes(
                data, location=storage.location_of(layout.METADATA)
            )
            CheckpointStore.verify_files(meta, storage)
            return meta, storage, cfg.from_savepoint
        return None, None, None

    # -- running --------------------------------------------------------------------------
    async def run(
        self,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval_s: float = 2.0,
    ) -> JobRunResult:
        started = time.monotonic()
        self._open_storage()
        result = JobRunResult(job_id=self.job_id, state="RUNNING", duration_s=0.0)
        self.result = result
        attempt = 0
        try:
            while True:
                info = await self._run_attempt(attempt, result, on_progress, progress_interval_s)
                if info.failure is None:
                    result.state = "STOPPED" if self._stopped else "FINISHED"
                    return result
                delay = self.restart.on_failure(int(time.time() * 1000))
                if delay is None:
                    result.state = "FAILED"
                    raise errors.JobFailedError(
                        f"job {self.job_id or ''} failed after {attempt + 1} attempt(s) "
                        f"({self.restart.describe()} gave up): {info.failure}"
                    ) from self._last_failure
                log.warning(
                    "attempt %d failed (%s); restarting in %.1fs", attempt, info.failure, delay
                )
                await asyncio.sleep(delay)
                attempt += 1
        finally:
            result.duration_s = time.monotonic() - started
            self._uploads.shutdown(wait=True)

    _last_failure: BaseException | None = None

    async def _run_attempt(
        self,
        attempt: int,
        result: JobRunResult,
        on_progress: Callable[[Progress], None] | None,
        progress_interval_s: float,
    ) -> AttemptInfo:
        meta, restore_storage, restored_from = self._start_point()
        graph = self.build_graph(meta)
        if meta is not None:
            check_restorable(
                meta,
                graph,
                allow_non_restored_state=bool(
                    self.checkpoint and self.checkpoint.allow_non_restored_state
                ),
            )
        config = self._attempt_config(attempt)
        executor = LocalExecutor(graph, config)
        self.executor = executor
        result.tasks = executor.tasks
        info = AttemptInfo(
            attempt=attempt,
            restored_checkpoint_id=None if meta is None else meta.checkpoint_id,
            restored_from=restored_from,
            restore_stats=RestoreStats(),
        )
        if meta is not None:
            for op in meta.operators:
                entry = op.operator_state.get(SPLITS)
                if entry is not None:
                    info.restored_positions[op.uid] = entry.all_elements()
        result.attempts.append(info)
        self._failover = None
        try:
            if self.checkpoint is not None:
                self._install_checkpointing(executor, graph, meta)
            if meta is not None and restore_storage is not None:
                for task in executor.tasks:
                    stats = restore_task(task, meta, restore_storage, self.faults)
                    checkpointer = self._checkpointers.get((task.vertex_id, task.subtask_index))
                    if checkpointer is not None and stats.native_bases:
                        checkpointer.seed_incremental(stats.native_bases, meta.checkpoint_id)
                    info.restore_per_task[task.name] = stats
                    info.restore_stats.bytes_read += stats.bytes_read
                    info.restore_stats.key_groups += stats.key_groups
                    info.restore_stats.requests += stats.requests
            await self._supervise(executor, on_progress, progress_interval_s)
        except (errors.JobFailedError, _JobFailover, errors.JobCancelledError) as exc:
            if isinstance(exc, errors.JobCancelledError) and self._stopped:
                return info
            if isinstance(exc, errors.JobCancelledError):
                raise
            cause = exc.__cause__ or exc
            self._last_failure = cause
            info.failure = str(cause)
        except errors.StreamJobError:
            raise
        except Exception as exc:  # e.g. an injected fault while restoring
            self._last_failure = exc
            info.failure = f"{type(exc).__name__}: {exc}"
        finally:
            info.source_records = sum(t.records_out for t in executor.tasks if t.gate is None)
            await self._drain_uploads()
            _dispose_native_backends(executor)
            await self._collect_shared_garbage()
        return info

    async def _collect_shared_garbage(self) -> None:
        """At the end of an attempt nothing is pending: the shared files that only discarded
        checkpoints used can go (best effort: the next start collects what this leaves)."""
        store = self.store
        if store is None or self.checkpoint is None:
            return
        loop = asyncio.get_running_loop()
        try:
            completed = (await loop.run_in_executor(self._uploads, store.listing)).completed
            self._registry = await loop.run_in_executor(
                self._uploads, self._rebuild_registry, store, completed
            )
        except Exception as exc:
            log.warning("could not collect unreferenced shared files: %s", exc)

    def _attempt_config(self, attempt: int) -> ExecutionConfig:
        from dataclasses import replace

        job_config = dict(self.config.job_config)
        job_config["checkpointing"] = self.checkpoint is not None
        job_config["attempt_id"] = f"{self._run_nonce}-{attempt}"
        job_config["job_id"] = self.job_id
        return replace(self.config, attempt=attempt, job_config=job_config)

    async def _supervise(
        self,
        executor: LocalExecutor,
        on_progress: Callable[[Progress], None] | None,
        progress_interval_s: float,
    ) -> None:
        run = asyncio.ensure_future(
            executor.run(on_progress=on_progress, progress_interval_s=progress_interval_s)
        )
        ticker = None
        if self.checkpoint is not None:
            ticker = asyncio.ensure_future(self._tick_loop(executor))
        try:
            while True:
                done, _ = await asyncio.wait(
                    {run} | ({ticker} if ticker else set()), return_when=asyncio.FIRST_COMPLETED
                )
                if run in done:
                    run.result()
                    return
                if ticker is not None and ticker in done:
                    ticker.result()  # raises the failover
                    ticker = None
        except BaseException:
            executor.cancel()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            raise
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)

    # -- checkpoint triggering --------------------------------------------------------------
    def _install_checkpointing(
        self, executor: LocalExecutor, graph: JobGraph, meta: CheckpointMetadata | None
    ) -> None:
        assert self.checkpoint is not None and self.store is not None
        store = self.store
        listing = store.listing()
        if store.remove_garbage():
            log.info("removed checkpoint directories without _metadata")
        self._registry = self._rebuild_registry(store, listing.completed)
        first_id = max(listing.max_id, meta.checkpoint_id if meta else 0) + 1
        self.coordinator = CheckpointCoordinator(
            self.checkpoint, first_id=first_id, now_ms=self._now()
        )
        self._graph = graph
        self._checkpointers = {}
        exactly_once = self.checkpoint.mode is CheckpointingMode.EXACTLY_ONCE
        for task in executor.tasks:
            checkpointer = TaskCheckpointer(
                task,
                exactly_once=exactly_once,
                storage_for=self._storage_for,
                upload_executor=self._uploads,
                acknowledge=self._on_ack,
                decline=self._on_decline,
                faults=self.faults,
                incremental=self.checkpoint.incremental,
            )
            self._checkpointers[checkpointer.key] = checkpointer

    @staticmethod
    def _rebuild_registry(
        store: CheckpointStore, completed: list[int]
    ) -> SharedStateRegistry | None:
        """The shared-file registry from the retained checkpoints; unreferenced shared files
        are deleted (nothing is pending at an attempt's start). None, and nothing deleted, if
        a retained ``_metadata`` cannot be read."""
        try:
            registry = SharedStateRegistry.rebuild(
                store.read(cid, verify=False) for cid in completed
            )
        except errors.CheckpointError as exc:
            log.warning("shared files are kept: a retained checkpoint is unreadable (%s)", exc)
            return None
        garbage = registry.unreferenced(store.shared_files())
        if garbage:
            log.info("deleting %d shared files no retained checkpoint references", len(garbage))
            store.delete_shared(garbage)
        return registry

    def _storage_for(self, barrier: CheckpointBarrier) -> CheckpointStorage:
        assert self.store is not None
        target = barrier.options.target
        if barrier.options.kind is CheckpointKind.SAVEPOINT and target is not None:
            storage = self._savepoint_storages.get(target)
            if storage is None:
                storage = self._savepoint_storages[target] = open_storage(target)
            return storage
        return self.store.storage

    @staticmethod
    def _now() -> int:
        return int(time.time() * 1000)

    def _live_tasks(self, executor: LocalExecutor) -> list[Task]:
        return [t for t in executor.tasks if not t.finished]

    async def _tick_loop(self, executor: LocalExecutor) -> None:
        coordinator = self.coordinator
        assert coordinator is not None
        while True:
            await asyncio.sleep(TICK_S)
            if self._failover is not None:
                raise _JobFailover(str(self._failover)) from self._failover
            now = self._now()
            timed_out = coordinator.timed_out(now)
            if timed_out is not None:
                self._abort(timed_out.checkpoint_id, "timed out")
                continue
            if coordinator.pending is not None:
                continue
            live = self._live_tasks(executor)
            if not live:
                return
            sources = [t for t in executor.tasks if t.gate is None]
            request = self._savepoint
            if request is not None and not request.triggered:
                self._trigger(executor, request.options())
                request.triggered = True
                request.checkpoint_id = coordinator.next_id - 1
            elif all(t.end_of_input for t in sources) or coordinator.due(now):
                self._trigger(executor, CheckpointOptions(aligned=self._aligned()))

    def _aligned(self) -> bool:
        return self.checkpoint is not None and (
            self.checkpoint.mode is CheckpointingMode.EXACTLY_ONCE
        )

    def _trigger(self, executor: LocalExecutor, options: CheckpointOptions) -> PendingCheckpoint:
        coordinator = self.coordinator
        assert coordinator is not None
        live = self._live_tasks(executor)
        pending = coordinator.trigger(
            self._now(), {(t.vertex_id, t.subtask_index) for t in live}, options
        )
        barrier = CheckpointBarrier(pending.checkpoint_id, pending.timestamp_ms, options)
        for task in live:
            if task.gate is None:
                checkpointer = self._checkpointers[(task.vertex_id, task.subtask_index)]
                task.post(functools.partial(checkpointer.trigger_at_source, barrier))
        return pending

    # -- acknowledgements and commit ----------------------------------------------------------
    def _on_ack(self, checkpoint_id: int, task: tuple[int, int], snapshot: SubtaskSnapshot) -> None:
        coordinator = self.coordinator
        if coordinator is None:
            return
        if coordinator.acknowledge(checkpoint_id, task, snapshot):
            future = asyncio.ensure_future(self._finalize(checkpoint_id))
            self._background.add(future)
            future.add_done_callback(self._background.discard)

    def _on_decline(self, checkpoint_id: int, task: tuple[int, int], exc: BaseException) -> None:
        log.warning("task %s declined checkpoint %d: %s", task, checkpoint_id, exc)
        self._abort(checkpoint_id, f"task {task} declined: {exc}", cause=exc)

    def _abort(self, checkpoint_id: int, reason: str, cause: BaseException | None = None) -> None:
        coordinator = self.coordinator
        if coordinator is None:
            return
        pending = coordinator.pending
        request = self._savepoint
        if pending is not None and pending.is_savepoint and request is not None:
            request.fail(f"savepoint {checkpoint_id} failed: {reason}")
        must_fail = coordinator.abort(checkpoint_id, reason)
        for checkpointer in self._checkpointers.values():
            checkpointer.task.post(functools.partial(checkpointer.notify_aborted, checkpoint_id))
        if must_fail:
            failure = errors.CheckpointError(
                f"checkpoint {checkpoint_id} failed ({reason}) and the tolerable checkpoint "
                f"failure count is {coordinator.config.tolerable_failures}"
            )
            failure.__cause__ = cause
            self._failover = failure

    async def _finalize(self, checkpoint_id: int) -> None:
        coordinator = self.coordinator
        store = self.store
        assert coordinator is not None and store is not None
        pending = coordinator.pending
        if pending is None or pending.checkpoint_id != checkpoint_id:
            return
        loop = asyncio.get_running_loop()
        meta = assemble_metadata(
            job_id=self.job_id,
            pending=pending,
            graph=self._graph,
            now_ms=self._now(),
        )
        try:
            if pending.is_savepoint:
                target = pending.options.target
                assert target is not None
                storage = self._savepoint_storages[target]
                committed = await loop.run_in_executor(
                    self._uploads, storage.put_if_absent, layout.METADATA, meta.to_bytes()
                )
                path = target  # as the user named it (a path stays a path)
            else:
                committed = await loop.run_in_executor(self._uploads, store.commit, meta)
                path = store.describe(checkpoint_id)
        except Exception as exc:
            self._abort(checkpoint_id, f"writing _metadata failed: {exc}", cause=exc)
            return
        if not committed:
            # Another JobManager committed this id: we must not notify anybody.
            self._abort(checkpoint_id, "_metadata already existed (lost the commit race)")
            return
        completed = CompletedInfo(
            checkpoint_id=checkpoint_id,
            timestamp_ms=pending.timestamp_ms,
            duration_ms=meta.duration_ms,
            size_bytes=meta.total_size(),
            kind=pending.options.kind,
            path=path,
        )
        coordinator.complete(checkpoint_id, completed, self._now())
        if self.result is not None:
            self.result.checkpoints.append(completed)
        try:
            self.faults.hit("after_metadata", checkpoint_id=checkpoint_id)
        except Exception as exc:
            self._failover = exc
            return
        request = self._savepoint
        if pending.is_savepoint and request is not None:
            request.complete(path)
            if not pending.options.stop:
                return  # an intermediate savepoint commits nothing
        for checkpointer in self._checkpointers.values():
            if not checkpointer.task.finished:
                checkpointer.task.post(
                    functools.partial(checkpointer.notify_complete, checkpoint_id)
                )
        if not pending.is_savepoint:
            await loop.run_in_executor(self._uploads, self._retain, meta)
        elif pending.options.stop:
            self._stopped = True
            if self.result is not None:
                self.result.savepoint_path = path
            if self.executor is not None:
                self.executor.stop()

    def _retain(self, meta: CheckpointMetadata) -> None:
        """Retain the last N checkpoints; delete the shared files nobody can reference now."""
        assert self.store is not None
        registry = self._registry
        if registry is not None:
            registry.register(
                meta.checkpoint_id, meta.shared_files(), floor=meta.incremental_floor()
            )
        discarded = self.store.retain(self.checkpoint_retained())
        if registry is not None:
            self.store.delete_shared(registry.release(discarded))

    def checkpoint_retained(self) -> int:
        return self.checkpoint.retained if self.checkpoint is not None else 1

    async def _drain_uploads(self) -> None:
        """Wait for this attempt's uploads, commits and retention before the next one lists
        the storage (a dead attempt must not write or delete behind the next one's back)."""
        for checkpointer in self._checkpointers.values():
            if checkpointer.uploads:
                await asyncio.gather(*checkpointer.uploads, return_exceptions=True)
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- savepoints ---------------------------------------------------------------------------
    async def trigger_savepoint(
        self, target_dir: str, *, stop: bool = False, drain: bool = False
    ) -> str:
        """Take a savepoint of the running job; returns its location."""
        if self.checkpoint is None:
            raise errors.CheckpointError("savepoints need checkpointing to be configured")
        if self._savepoint is not None and not self._savepoint.done.done():
            raise errors.CheckpointError("a savepoint is already in progress")
        target = target_dir.rstrip("/")
        coordinator = self.coordinator
        cid = coordinator.next_id if coordinator is not None else 0
        location = f"{target}/{layout.savepoint_name(self.job_id, cid)}"
        request = SavepointRequest(location=location, stop=stop, drain=drain)
        self._savepoint = request
        return await request.done


def _dispose_native_backends(executor: LocalExecutor) -> None:
    """Close the local databases of an ended attempt (uploads are drained by then); the hashmap
    backends are left to the garbage collector, as results may still show their tasks."""
    for task in executor.tasks:
        for op in task.operators:
            backend = getattr(op, "backend", None)
            if backend is not None and hasattr(backend, "native_checkpoint"):
                backend.dispose()
