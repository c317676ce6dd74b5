"""The TaskManager: runs its share of a deployment and reports to the JobManager.

Lifecycle:

1. start the data server (TCP) and register with the JobManager (id = pod uid or process id
   plus a start nonce); learn the JobManager's epoch;
2. heartbeat on a thread of its own (a long user function or a big snapshot cannot make it
   look dead); an unknown TaskManager or a new epoch means the JobManager restarted: cancel the
   tasks and register again; no answer for ``jm_timeout_s`` also cancels the tasks (fencing);
3. on ``deploy``: import the job, build the same graph (a different fingerprint is refused),
   connect the TCP channels of the local subtasks, restore them, run them;
4. forward checkpoint triggers to source tasks, acknowledgements and task states to the
   JobManager, commit notifications to the tasks; everything carries (epoch, attempt) and stale
   messages are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from streamjob import errors
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.snapshotting import SubtaskSnapshot, TaskCheckpointer
from streamjob.cluster import messages
from streamjob.cluster.heartbeat import HeartbeatThread
from streamjob.cluster.jobloading import build_environment, restore_source
from streamjob.cluster.rpc_client import JobManagerRpc
from streamjob.network.factory import TcpChannels
from streamjob.network.server import DataServer, Fence
from streamjob.runtime.events import CheckpointBarrier
from streamjob.runtime.local_executor import LocalExecutor
from streamjob.runtime.task import Task
from streamjob.storage.base import CheckpointStorage
from streamjob.storage.factory import open_storage

log = logging.getLogger(__name__)

#: how long a deployment that arrives before the answer to our registration waits for it
REGISTRATION_ANSWER_WAIT_S = 5.0


class TaskManager:
    def __init__(
        self,
        *,
        jobmanager_url: str,
        tm_id: str | None = None,
        host: str = "127.0.0.1",
        data_port: int = 0,
        rest_url: str = "",
        heartbeat_interval_s: float = 1.0,
        jm_timeout_s: float = 10.0,
    ) -> None:
        self.tm_id = tm_id or f"tm-{os.getpid()}"
        self.nonce = uuid.uuid4().hex[:8]
        self.pod_uid = os.environ.get("STREAMJOB_POD_UID", self.tm_id)
        self.host = host
        self.rest_url = rest_url
        self.server = DataServer(host, data_port)
        self.rpc = JobManagerRpc(jobmanager_url)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.jm_timeout_s = jm_timeout_s
        self.epoch: str | None = None
        #: set once the JobManager's answer to our registration (the epoch) is in
        self._registered = asyncio.Event()
        self.deployment: messages.Deployment | None = None
        self.executor: LocalExecutor | None = None
        self.tcp: TcpChannels | None = None
        self.checkpointers: dict[tuple[int, int], TaskCheckpointer] = {}
        self._run: asyncio.Future[Any] | None = None
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tm-upload")
        self._storages: dict[str, CheckpointStorage] = {}
        self._heartbeat: HeartbeatThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reported: dict[tuple[int, int], str] = {}
        self._stopped = asyncio.Event()
        self._background: set[asyncio.Future[Any]] = set()

    def _spawn(self, coro: Any) -> None:
        future = asyncio.ensure_future(coro)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    # -- start-up -------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.server.start()
        await self.register()
        self._heartbeat = HeartbeatThread(self, self.heartbeat_interval_s, self.jm_timeout_s)
        self._heartbeat.start()
        self._spawn(self._monitor())

    def registration(self) -> messages.Registration:
        return messages.Registration(
            tm_id=self.tm_id,
            nonce=self.nonce,
            pod_uid=self.pod_uid,
            data_host=self.host,
            data_port=self.server.port,
            rest_url=self.rest_url,
        )

    async def register(self) -> None:
        delay = 0.1
        while True:
            try:
                self.epoch = await self.rpc.register(self.registration())
                self._registered.set()
                log.info("%s registered with the JobManager (epoch %s)", self.tm_id, self.epoch)
                return
            except errors.StreamJobError:
                raise
            except Exception as exc:  # the JobManager is not up yet
                log.info("registering failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    # -- called from the heartbeat thread (through the loop) ------------------------------
    def on_jobmanager_changed(self, reason: str) -> None:
        """The epoch changed or the JobManager went silent: cancel everything, re-register."""
        log.warning("%s: %s; cancelling tasks", self.tm_id, reason)
        self.cancel_local()
        self.epoch = None
        self._registered.clear()
        self._spawn(self.register())

    # -- RPC handlers -----------------------------------------------------------------------
    def _current(self, epoch: str, attempt: int) -> bool:
        d = self.deployment
        return epoch == self.epoch and d is not None and d.attempt == attempt

    async def deploy(self, deployment: messages.Deployment) -> None:
        if self.epoch is None:
            # the JobManager deploys as soon as it registered us, which can be before its
            # answer (the epoch) reached us: wait for it rather than refuse the deployment
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._registered.wait(), REGISTRATION_ANSWER_WAIT_S)
        if deployment.epoch != self.epoch:
            raise errors.StreamJobError(
                f"deployment from epoch {deployment.epoch}, current epoch {self.epoch}: dropped"
            )
        await self._stop_current()
        env, graph = build_environment(deployment)
        if graph.fingerprint() != deployment.graph_fingerprint:
            raise errors.JobDefinitionError(
                f"TaskManager {self.tm_id}: the job code here builds a different graph "
                f"(fingerprint {graph.fingerprint()}) than the JobManager's "
                f"({deployment.graph_fingerprint}); run the same image/job version everywhere"
            )
        local = [
            messages.parse_task_key(key)
            for key, tm in deployment.placement.items()
            if tm == self.tm_id
        ]
        addresses = {tm: (str(a[0]), int(a[1])) for tm, a in deployment.addresses.items()}

        def address_of(vertex: int, subtask: int) -> tuple[str, int]:
            return addresses[deployment.placement[messages.task_key_text(vertex, subtask)]]

        fence = Fence(deployment.job_id, deployment.epoch, deployment.attempt)
        tcp = TcpChannels(graph, self.server, fence, local, address_of, deployment.credits)
        self.deployment = deployment
        self.tcp = tcp
        await tcp.prepare()
        executor = LocalExecutor(graph, env.config, channels=tcp, subtasks=local)
        self.executor = executor
        self.checkpointers = {}
        self._reported = {}
        if deployment.checkpointing:
            for task in executor.tasks:
                checkpointer = TaskCheckpointer(
                    task,
                    incremental=deployment.incremental,
                    exactly_once=deployment.exactly_once,
                    storage_for=self._storage_for,
                    upload_executor=self._uploads,
                    acknowledge=self._acknowledge,
                    decline=self._decline,
                    faults=FaultInjector(),
                )
                self.checkpointers[checkpointer.key] = checkpointer
        if deployment.restore_path is not None:
            restored_id, stats = restore_source(deployment, executor.tasks, self._storage)
            for key, task_stats in stats.items():
                restored = self.checkpointers.get(key)
                if restored is not None and task_stats.native_bases:
                    # later incremental checkpoints reuse the restored checkpoint's files
                    restored.seed_incremental(task_stats.native_bases, restored_id)
        self._run = asyncio.ensure_future(executor.run())

    def _storage(self, url: str) -> CheckpointStorage:
        storage = self._storages.get(url)
        if storage is None:
            storage = self._storages[url] = open_storage(url)
        return storage

    def _storage_for(self, barrier: CheckpointBarrier) -> CheckpointStorage:
        d = self.deployment
        assert d is not None and d.checkpoint_dir is not None
        target = barrier.options.target
        if barrier.options.kind.value == "savepoint" and target is not None:
            return self._storage(target)
        return self._storage(d.checkpoint_dir).child(d.job_id)

    def _acknowledge(
        self, checkpoint_id: int, task: tuple[int, int], snapshot: SubtaskSnapshot
    ) -> None:
        d = self.deployment
        if d is None:
            return
        self._spawn(
            self.rpc.acknowledge(
                d.epoch, d.attempt, checkpoint_id, task, messages.snapshot_to_json(snapshot)
            )
        )

    def _decline(self, checkpoint_id: int, task: tuple[int, int], exc: BaseException) -> None:
        d = self.deployment
        if d is None:
            return
        self._spawn(
            self.rpc.decline(
                d.epoch, d.attempt, checkpoint_id, task, f"{type(exc).__name__}: {exc}"
            )
        )

    def trigger(self, epoch: str, attempt: int, barrier: CheckpointBarrier) -> bool:
        if not self._current(epoch, attempt) or self.executor is None:
            return False
        for task in self.executor.tasks:
            if task.gate is None and not task.finished:
                checkpointer = self.checkpointers[(task.vertex_id, task.subtask_index)]
                task.post(_bind(checkpointer.trigger_at_source, barrier))
        return True

    def notify(self, epoch: str, attempt: int, checkpoint_id: int, complete: bool) -> bool:
        if not self._current(epoch, attempt):
            return False
        for checkpointer in self.checkpointers.values():
            if checkpointer.task.finished:
                continue
            action = checkpointer.notify_complete if complete else checkpointer.notify_aborted
            checkpointer.task.post(_bind(action, checkpoint_id))
        return True

    def stop_tasks(self, epoch: str, attempt: int) -> bool:
        if not self._current(epoch, attempt) or self.executor is None:
            return False
        self.executor.stop()
        return True

    def cancel(self, epoch: str, attempt: int | None) -> bool:
        if epoch != self.epoch:
            return False
        if (
            attempt is not None
            and self.deployment is not None
            and attempt != self.deployment.attempt
        ):
            return False
        self.cancel_local()
        return True

    def cancel_local(self) -> None:
        if self.executor is not None:
            self.executor.cancel()

    async def _stop_current(self) -> None:
        if self.executor is not None:
            self.executor.cancel()
        if self._run is not None:
            await asyncio.gather(self._run, return_exceptions=True)
        if self.tcp is not None:
            await self.tcp.close()
        self.executor = None
        self._run = None
        self.tcp = None

    # -- reporting ----------------------------------------------------------------------------
    async def _monitor(self) -> None:
        """Report task state changes: sources that ended input, finished or failed tasks."""
        while not self._stopped.is_set():
            await asyncio.sleep(0.02)
            d, executor, run = self.deployment, self.executor, self._run
            if d is None or executor is None:
                continue
            for task in executor.tasks:
                state = _task_state(task)
                key = (task.vertex_id, task.subtask_index)
                if self._reported.get(key) != state and state != "RUNNING":
                    self._reported[key] = state
                    await self.rpc.task_state(d.epoch, d.attempt, key, state, None)
            if run is not None and run.done():
                self._run = None
                exc = run.exception() if not run.cancelled() else None
                if exc is not None and not isinstance(exc, errors.JobCancelledError):
                    cause = exc.__cause__ or exc
                    await self.rpc.task_state(d.epoch, d.attempt, (-1, -1), "FAILED", str(cause))

    def metrics(self) -> dict[str, Any]:
        executor = self.executor
        tasks = [] if executor is None else executor.tasks
        return {
            "tm_id": self.tm_id,
            "epoch": self.epoch,
            "attempt": None if self.deployment is None else self.deployment.attempt,
            "tasks": [
                {
                    "name": t.name,
                    "vertex": t.vertex_id,
                    "subtask": t.subtask_index,
                    "records_in": t.records_in,
                    "records_out": t.records_out,
                    "backpressured_s": round(t.backpressured_s, 3),
                    "state_bytes": t.state_size_bytes(),
                    "state": _task_state(t),
                }
                for t in tasks
            ],
        }

    async def close(self) -> None:
        self._stopped.set()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        await self._stop_current()
        await self.server.close()
        await self.rpc.close()
        self._uploads.shutdown(wait=False)


def _task_state(task: Task) -> str:
    if task.finished:
        return "FINISHED"
    if task.end_of_input:
        return "END_OF_INPUT"
    return "RUNNING"


def _bind(fn: Any, arg: Any) -> Any:
    import functools

    return functools.partial(fn, arg)
