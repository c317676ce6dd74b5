"""The job runner: attempts, the start rule, checkpoints and failover, in one process.

One run of a job (DESIGN.md sections 6 and 7):

1. open the checkpoint storage and probe it (exactly-once needs put-if-absent);
2. per attempt, apply the start rule: the latest completed checkpoint under this job's id
   wins, else the savepoint given, else empty state; build the graph (adopting the
   checkpoint's max parallelism), deploy the tasks and restore them before they open;
3. checkpoints are driven by the :class:`CheckpointDriver` the JobManager uses too, through
   an in-process port: periodic triggers (and one at once when every source has ended, so the
   final transactions commit: FLIP-147), the commit by writing ``_metadata`` with
   put-if-absent, notifications, retention and the shared-file registry;
4. when a task fails, ask the restart strategy; restart from the latest completed checkpoint,
   or fail the job with the cause.

The JobManager of the distributed runtime runs the same driver with a port of RPCs.
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
from streamjob.checkpoint.coordinator import CheckpointCoordinator, CompletedInfo
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.operator_state import SPLITS
from streamjob.checkpoint.restoring import RestoreStats, check_restorable, restore_task
from streamjob.checkpoint.snapshotting import TaskCheckpointer
from streamjob.checkpoint.store import CheckpointStore
from streamjob.execution.checkpointing import (
    CheckpointDriver,
    CheckpointFailover,
    collect_shared_garbage,
    start_attempt,
)
from streamjob.execution.graphs import GraphBuilder
from streamjob.execution.restart import RestartStrategy, default_restart_strategy
from streamjob.execution.results import AttemptInfo, JobRunResult
from streamjob.runtime.config import ExecutionConfig
from streamjob.runtime.events import CheckpointBarrier
from streamjob.runtime.graph import JobGraph
from streamjob.runtime.local_executor import LocalExecutor, Progress
from streamjob.storage.base import CheckpointStorage
from streamjob.storage.factory import open_storage

log = logging.getLogger(__name__)

TICK_S = 0.02


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
        #: the current attempt's checkpoint driver (None between attempts or without checkpoints)
        self.driver: CheckpointDriver | None = None
        self.executor: LocalExecutor | None = None
        self.result: JobRunResult | None = None
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ckpt-upload")
        self._savepoint_storages: dict[str, CheckpointStorage] = {}
        self._stopped = False
        self._run_nonce = uuid.uuid4().hex[:8]

    @property
    def coordinator(self) -> CheckpointCoordinator | None:
        """The current attempt's checkpoint coordinator (the REST views read it)."""
        return None if self.driver is None else self.driver.coordinator

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
        ended = "the attempt ended"
        try:
            if self.checkpoint is not None:
                self._install_checkpointing(executor, graph, meta)
            if meta is not None and restore_storage is not None:
                checkpointers = self._checkpointers()
                for task in executor.tasks:
                    stats = restore_task(task, meta, restore_storage, self.faults)
                    checkpointer = checkpointers.get((task.vertex_id, task.subtask_index))
                    if checkpointer is not None and stats.native_bases:
                        checkpointer.seed_incremental(stats.native_bases, meta.checkpoint_id)
                    info.restore_per_task[task.name] = stats
                    info.restore_stats.bytes_read += stats.bytes_read
                    info.restore_stats.key_groups += stats.key_groups
                    info.restore_stats.requests += stats.requests
            await self._supervise(executor, on_progress, progress_interval_s)
        except (errors.JobFailedError, CheckpointFailover, errors.JobCancelledError) as exc:
            if isinstance(exc, errors.JobCancelledError) and self._stopped:
                return info
            if isinstance(exc, errors.JobCancelledError):
                ended = "the job was CANCELED"
                raise
            cause = exc.__cause__ or exc
            self._last_failure = cause
            info.failure = str(cause)
        except errors.StreamJobError as exc:
            ended = f"the job FAILED ({exc})"
            raise
        except Exception as exc:  # e.g. an injected fault while restoring
            self._last_failure = exc
            info.failure = f"{type(exc).__name__}: {exc}"
        finally:
            info.source_records = sum(t.records_out for t in executor.tasks if t.gate is None)
            if info.failure is not None:
                ended = f"the attempt failed ({info.failure})"
            await self._end_checkpointing(ended)
            self.driver = None
            _dispose_native_backends(executor)
        return info

    def _checkpointers(self) -> dict[tuple[int, int], TaskCheckpointer]:
        port = None if self.driver is None else self.driver.port
        return port.checkpointers if isinstance(port, _InProcessPort) else {}

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
        if self.driver is not None:
            ticker = asyncio.ensure_future(self._tick_loop(self.driver))
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

    # -- checkpointing ----------------------------------------------------------------------
    def _install_checkpointing(
        self, executor: LocalExecutor, graph: JobGraph, meta: CheckpointMetadata | None
    ) -> None:
        assert self.checkpoint is not None and self.store is not None
        port = _InProcessPort(self, executor)
        self.driver = CheckpointDriver(
            config=self.checkpoint,
            store=self.store,
            job_id=self.job_id,
            graph=graph,
            start=start_attempt(self.store, None if meta is None else meta.checkpoint_id),
            port=port,
            executor=self._uploads,
            faults=self.faults,
            savepoint_storages=self._savepoint_storages,
            on_completed=self._on_completed,
        )
        driver = self.driver
        exactly_once = self.checkpoint.mode is CheckpointingMode.EXACTLY_ONCE
        for task in executor.tasks:
            checkpointer = TaskCheckpointer(
                task,
                exactly_once=exactly_once,
                storage_for=driver.storage_for,
                upload_executor=self._uploads,
                acknowledge=driver.acknowledge,
                decline=_declining_to(driver),
                faults=self.faults,
                incremental=self.checkpoint.incremental,
            )
            port.checkpointers[checkpointer.key] = checkpointer

    def _on_completed(self, completed: CompletedInfo) -> None:
        if self.result is not None:
            self.result.checkpoints.append(completed)

    async def _tick_loop(self, driver: CheckpointDriver) -> None:
        """Drive checkpoints until no task is left (raises the driver's failover)."""
        while driver.port.live_tasks():
            await asyncio.sleep(TICK_S)
            driver.tick()

    async def _end_checkpointing(self, reason: str) -> None:
        """Wait for this attempt's uploads, commits and retention before the next one lists
        the storage (a dead attempt must not write or delete behind the next one's back);
        then nothing is pending and the shared files only discarded checkpoints used can go
        (best effort: the next start collects what this leaves)."""
        driver = self.driver
        if driver is None:
            return
        port = driver.port
        assert isinstance(port, _InProcessPort)
        for checkpointer in port.checkpointers.values():
            if checkpointer.uploads:
                await asyncio.gather(*checkpointer.uploads, return_exceptions=True)
        await driver.drain(reason)
        if self.store is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._uploads, collect_shared_garbage, self.store)

    # -- savepoints ---------------------------------------------------------------------------
    async def trigger_savepoint(
        self, target_dir: str, *, stop: bool = False, drain: bool = False
    ) -> str:
        """Take a savepoint of the running job; returns its location."""
        if self.checkpoint is None:
            raise errors.CheckpointError("savepoints need checkpointing to be configured")
        if self.driver is None:
            raise errors.CheckpointError(
                "the job is between attempts (restarting): trigger the savepoint again once it "
                "is RUNNING"
            )
        request = self.driver.request_savepoint(target_dir, stop=stop, drain=drain)
        return await request.done


class _InProcessPort:
    """The checkpoint driver's view of an attempt whose tasks run in this process: barriers
    and notifications are posted to the tasks' mailboxes."""

    def __init__(self, runner: LocalJobRunner, executor: LocalExecutor) -> None:
        self.runner = runner
        self.executor = executor
        self.checkpointers: dict[tuple[int, int], TaskCheckpointer] = {}

    def live_tasks(self) -> set[tuple[int, int]]:
        return {(t.vertex_id, t.subtask_index) for t in self.executor.tasks if not t.finished}

    def all_sources_ended(self) -> bool:
        return all(t.end_of_input for t in self.executor.tasks if t.gate is None)

    def trigger(self, barrier: CheckpointBarrier) -> None:
        for task in self.executor.tasks:
            if task.gate is None and not task.finished:
                checkpointer = self.checkpointers[(task.vertex_id, task.subtask_index)]
                task.post(functools.partial(checkpointer.trigger_at_source, barrier))

    def notify_complete(self, checkpoint_id: int) -> None:
        for checkpointer in self.checkpointers.values():
            if not checkpointer.task.finished:
                checkpointer.task.post(
                    functools.partial(checkpointer.notify_complete, checkpoint_id)
                )

    def notify_aborted(self, checkpoint_id: int) -> None:
        for checkpointer in self.checkpointers.values():
            checkpointer.task.post(functools.partial(checkpointer.notify_aborted, checkpoint_id))

    def stop(self) -> None:
        runner = self.runner
        runner._stopped = True
        if runner.result is not None and runner.driver is not None:
            runner.result.savepoint_path = runner.driver.stopped_at
        self.executor.stop()


def _declining_to(
    driver: CheckpointDriver,
) -> Callable[[int, tuple[int, int], BaseException], None]:
    def decline(checkpoint_id: int, task: tuple[int, int], exc: BaseException) -> None:
        driver.decline(checkpoint_id, task, str(exc), cause=exc)

    return decline


def _dispose_native_backends(executor: LocalExecutor) -> None:
    """Close the local databases of an ended attempt (uploads are drained by then); the hashmap
    backends are left to the garbage collector, as results may still show their tasks."""
    for task in executor.tasks:
        for op in task.operators:
            backend = getattr(op, "backend", None)
            if backend is not None and hasattr(backend, "native_checkpoint"):
                backend.dispose()
