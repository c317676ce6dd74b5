"""The JobManager's job master: slots, deployments, checkpoints and failover of one job.

Loop of one job (DESIGN.md section 7):

1. wait until enough TaskManagers are registered and alive (one slot each);
2. apply the start rule (latest completed checkpoint of this job, else the savepoint, else
   empty), build the graph, place subtask *i* of every vertex on the *i*-th TaskManager and
   send each its deployment (a new attempt number fences everything older);
3. supervise: drive checkpoints (``CheckpointDriver``), watch heartbeats (a TaskManager silent
   for ``heartbeat_timeout_s``, or reported failed by the operator, is lost), collect task
   states; all tasks finished -> FINISHED;
4. on a failure: cancel the attempt everywhere, ask the restart strategy, go back to 1 — or
   FAILED with the cause. A rescale takes a checkpoint, stops the tasks and goes back to 1 at
   the new parallelism.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from streamjob import errors
from streamjob.api.environment import StreamEnvironment
from streamjob.checkpoint import layout
from streamjob.checkpoint.config import CheckpointConfig, CheckpointingMode
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import RestartStrategy
from streamjob.checkpoint.restoring import check_restorable, max_parallelism_of
from streamjob.checkpoint.store import CheckpointStore
from streamjob.cluster import messages, placement
from streamjob.cluster.rpc_client import TaskManagerRpc
from streamjob.execution.checkpointing import (
    CheckpointDriver,
    CheckpointFailover,
    collect_shared_garbage,
    start_attempt,
)
from streamjob.execution.restart import default_restart_strategy
from streamjob.jobref import load_job
from streamjob.jobstate import JobState
from streamjob.runtime.events import CheckpointBarrier
from streamjob.runtime.graph import JobGraph
from streamjob.storage.base import CheckpointStorage
from streamjob.storage.factory import open_storage

log = logging.getLogger(__name__)

TICK_S = 0.02


@dataclass
class TaskManagerInfo:
    registration: messages.Registration
    last_heartbeat: float
    registered_at_ms: int = 0
    alive: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    lost_reason: str | None = None


@dataclass
class JobSpec:
    job_ref: str
    job_args: list[str]
    parallelism: int
    max_parallelism: int | None
    checkpoint: CheckpointConfig | None
    state_backend: str = "hashmap"
    batch_size: int = 1024
    credits: int = 4


class _AttemptFailed(Exception):
    pass


class JobMaster:
    def __init__(
        self,
        spec: JobSpec,
        *,
        restart: RestartStrategy | None = None,
        heartbeat_timeout_s: float = 10.0,
        faults: FaultInjector | None = None,
    ) -> None:
        self.spec = spec
        self.epoch = uuid.uuid4().hex[:12]
        self.restart = restart or default_restart_strategy(
            checkpointing=spec.checkpoint is not None
        )
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.faults = faults or FaultInjector()
        self.tms: dict[str, TaskManagerInfo] = {}
        self.state = JobState.CREATED
        self.attempt = -1
        self.restarts = 0
        self.failure: str | None = None
        self.failures: list[str] = []
        self.started_ms = int(time.time() * 1000)
        self.driver: CheckpointDriver | None = None
        self._connectors_checked = False
        self.completed: list[Any] = []
        self.task_states: dict[tuple[int, int], str] = {}
        self.placement: dict[str, str] = {}
        self.graph: JobGraph | None = None
        self.job_id = ""
        self.store: CheckpointStore | None = None
        self.rpc = TaskManagerRpc()
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jm-io")
        self._savepoint_storages: dict[str, CheckpointStorage] = {}
        self._wake = asyncio.Event()
        self._attempt_failure: str | None = None
        self._rescale_to: int | None = None
        self._cancel_requested = False
        self.restored_from: str | None = None
        self.restored_checkpoint_id: int | None = None
        self.fingerprint = ""
        #: monotonic time of the first deployment and of the end (job running time)
        self.first_deployed: float | None = None
        self.ended: float | None = None
        self.end_time_ms: int | None = None
        #: failed checkpoints of attempts that already ended (the live driver counts its own)
        self.failed_checkpoints = 0

    # -- start-up ---------------------------------------------------------------------------
    def open_storage(self) -> None:
        cfg = self.spec.checkpoint
        if cfg is None:
            self.job_id = f"job-{self.epoch}"
            return
        root = open_storage(cfg.directory)
        if cfg.mode is CheckpointingMode.EXACTLY_ONCE and not cfg.allow_unsafe_storage:
            root.probe().require_put_if_absent(purpose="exactly-once checkpoints")
        self.job_id = cfg.job_id or layout.derive_job_id(root.url)
        self.store = CheckpointStore(root.child(self.job_id), self.job_id)

    def _environment(self, parallelism: int) -> StreamEnvironment:
        env = StreamEnvironment(parallelism=parallelism, max_parallelism=self.spec.max_parallelism)
        env.job_parameters["args"] = list(self.spec.job_args)
        load_job(self.spec.job_ref)(env)
        if not self._connectors_checked:
            self._connectors_checked = True
            env.check_connectors(self.spec.checkpoint)
        return env

    # -- TaskManager RPC handlers -------------------------------------------------------------
    def register(self, registration: messages.Registration) -> str:
        old = self.tms.get(registration.tm_id)
        if old is not None and old.registration.nonce != registration.nonce:
            # the same pod/process id with a new start nonce: the old one is gone
            self._lose(registration.tm_id, "it restarted (new start nonce)")
        self.tms[registration.tm_id] = TaskManagerInfo(
            registration, time.monotonic(), int(time.time() * 1000)
        )
        log.info(
            "TaskManager %s registered (%s:%d)",
            registration.tm_id,
            registration.data_host,
            registration.data_port,
        )
        self._wake.set()
        return self.epoch

    def heartbeat(
        self, tm_id: str, nonce: str, epoch: str, metrics: dict[str, Any]
    ) -> dict[str, Any]:
        info = self.tms.get(tm_id)
        known = (
            info is not None
            and info.alive
            and info.registration.nonce == nonce
            and epoch == self.epoch
        )
        if known and info is not None:
            info.last_heartbeat = time.monotonic()
            info.metrics = metrics
        return {"known": known, "epoch": self.epoch}

    def report_failed(self, pod_uid: str) -> bool:
        """The operator saw the pod fail: declare its TaskManager lost at once."""
        for tm_id, info in self.tms.items():
            if info.registration.pod_uid == pod_uid and info.alive:
                self._lose(tm_id, "its pod failed (reported by the operator)")
                return True
        return False

    def _lose(self, tm_id: str, reason: str) -> None:
        info = self.tms.get(tm_id)
        if info is None or not info.alive:
            return
        info.alive = False
        info.lost_reason = reason
        log.warning("TaskManager %s lost: %s", tm_id, reason)
        if tm_id in self.placement.values() and self.state is JobState.RUNNING:
            self._attempt_failure = f"TaskManager {tm_id} was lost: {reason}"
        self._wake.set()

    def _fresh(self, epoch: str, attempt: int) -> bool:
        return epoch == self.epoch and attempt == self.attempt

    def acknowledge(
        self,
        epoch: str,
        attempt: int,
        checkpoint_id: int,
        task: tuple[int, int],
        snapshot: dict[str, Any],
    ) -> bool:
        if not self._fresh(epoch, attempt) or self.driver is None:
            return False
        self.driver.acknowledge(checkpoint_id, task, messages.snapshot_from_json(snapshot))
        return True

    def decline(
        self, epoch: str, attempt: int, checkpoint_id: int, task: tuple[int, int], reason: str
    ) -> bool:
        if not self._fresh(epoch, attempt) or self.driver is None:
            return False
        self.driver.decline(checkpoint_id, task, reason)
        return True

    def task_state(
        self, epoch: str, attempt: int, task: tuple[int, int], state: str, error: str | None
    ) -> bool:
        if not self._fresh(epoch, attempt):
            return False
        if state == "FAILED":
            self._attempt_failure = error or f"task {task} failed"
        else:
            self.task_states[task] = state
            if state == "FINISHED" and self.driver is not None:
                self.driver.task_finished(task)
        self._wake.set()
        return True

    # -- REST actions -----------------------------------------------------------------------------
    def request_rescale(self, parallelism: int) -> None:
        if self.state is not JobState.RUNNING:
            raise errors.StreamJobError(
                f"the job is {self.state.value}, not RUNNING: cannot rescale"
            )
        if parallelism < 1:
            raise errors.StreamJobError("parallelism must be >= 1")
        self._rescale_to = parallelism
        self._wake.set()

    def request_cancel(self) -> None:
        self._cancel_requested = True
        self._wake.set()

    async def trigger_savepoint(self, target_dir: str, *, stop: bool) -> asyncio.Future[str]:
        if self.driver is None or self.state is not JobState.RUNNING:
            raise errors.StreamJobError(f"the job is {self.state.value}: no savepoint possible")
        request = self.driver.request_savepoint(target_dir, stop=stop, drain=False)
        return request.done

    # -- the job loop ---------------------------------------------------------------------------
    async def run(self) -> JobState:
        self.open_storage()
        parallelism = self.spec.parallelism
        while True:
            self._attempt_failure = None
            outcome = await self._run_attempt(parallelism)
            self.ended = time.monotonic()
            self.end_time_ms = int(time.time() * 1000)
            if outcome in ("finished", "stopped"):
                self.state = JobState.FINISHED
                return self.state
            if outcome == "canceled":
                self.state = JobState.CANCELED
                return self.state
            if outcome == "rescale":
                assert self._rescale_to is not None
                parallelism, self._rescale_to = self._rescale_to, None
                self.state = JobState.RESTARTING
                continue
            assert self.failure is not None
            self.failures.append(self.failure)
            delay = self.restart.on_failure(int(time.time() * 1000))
            if delay is None:
                self.state = JobState.FAILED
                log.error(
                    "job %s failed: %s (%s gave up)",
                    self.job_id,
                    self.failure,
                    self.restart.describe(),
                )
                return self.state
            self.state = JobState.RESTARTING
            self.restarts += 1
            log.warning(
                "attempt %d failed (%s); restarting in %.1fs", self.attempt, self.failure, delay
            )
            await asyncio.sleep(delay)

    async def _probe_taskmanagers(self) -> None:
        """Ask every live TaskManager for its health: unreachable ones are lost at once."""
        alive = [(t, i) for t, i in self.tms.items() if i.alive]
        results = await asyncio.gather(
            *(self.rpc.health(i.registration.rest_url) for _, i in alive), return_exceptions=True
        )
        for (tm_id, _), result in zip(alive, results, strict=True):
            if isinstance(result, BaseException):
                self._lose(tm_id, f"unreachable ({type(result).__name__}: {result})")

    async def _wait_for_slots(self, graph: JobGraph) -> list[str]:
        needed = placement.slots_needed(graph)
        await self._probe_taskmanagers()
        while True:
            self._check_heartbeats()
            alive = [t for t, info in self.tms.items() if info.alive]
            if len(alive) >= needed:
                return alive
            if self._cancel_requested:
                raise _AttemptFailed("canceled")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.2)

    def _check_heartbeats(self) -> None:
        now = time.monotonic()
        for tm_id, info in list(self.tms.items()):
            if info.alive and now - info.last_heartbeat > self.heartbeat_timeout_s:
                self._lose(tm_id, f"no heartbeat for {now - info.last_heartbeat:.1f}s")

    def _start_point(self) -> tuple[Any, str | None]:
        cfg = self.spec.checkpoint
        if cfg is None or self.store is None or not cfg.restore:
            return None, None
        latest = self.store.latest(allow_fallback=cfg.allow_checkpoint_fallback)
        if latest is not None:
            return latest, self.store.storage.location_of(
                layout.checkpoint_dir(latest.checkpoint_id)
            )
        if cfg.from_savepoint:
            from streamjob.cluster.jobloading import read_restore_metadata

            meta, _ = read_restore_metadata(cfg.from_savepoint, open_storage)
            return meta, cfg.from_savepoint
        return None, None

    async def _run_attempt(self, parallelism: int) -> str:
        meta, restore_path = self._start_point()
        env = self._environment(parallelism)
        adopted = {} if meta is None else max_parallelism_of(meta)
        graph = env.build_graph(adopted_max_parallelism=adopted)
        if meta is not None:
            check_restorable(
                meta,
                graph,
                allow_non_restored_state=bool(
                    self.spec.checkpoint and self.spec.checkpoint.allow_non_restored_state
                ),
            )
        self.graph = graph
        self.fingerprint = graph.fingerprint()
        try:
            alive = await self._wait_for_slots(graph)
        except _AttemptFailed:
            return "canceled"
        self.attempt += 1
        self.placement = placement.place(graph, alive)
        self.task_states = {
            (v.id, i): "DEPLOYING" for v in graph.vertices for i in range(v.parallelism)
        }
        self.restored_from = restore_path
        self.restored_checkpoint_id = None if meta is None else meta.checkpoint_id
        deployment = self._deployment(graph, parallelism, restore_path, adopted)
        if self.spec.checkpoint is not None and self.store is not None:
            start = await asyncio.get_running_loop().run_in_executor(
                self._uploads,
                start_attempt,
                self.store,
                None if meta is None else meta.checkpoint_id,
            )
            self.driver = CheckpointDriver(
                config=self.spec.checkpoint,
                store=self.store,
                job_id=self.job_id,
                graph=graph,
                start=start,
                port=_RemotePort(self),
                executor=self._uploads,
                faults=self.faults,
                savepoint_storages=self._savepoint_storages,
            )
        self.state = JobState.RUNNING
        if self.first_deployed is None:
            self.first_deployed = time.monotonic()
        ended = "the attempt ended"
        try:
            await self._deploy(deployment)
            return await self._supervise()
        except (_AttemptFailed, CheckpointFailover, errors.StreamJobError) as exc:
            self.failure = ended = str(exc)
            self.state = JobState.FAILING
            await self._cancel_everywhere()
            return "failed"
        finally:
            if self.driver is not None:
                await self.driver.drain(ended)
                if self.store is not None:
                    await asyncio.get_running_loop().run_in_executor(
                        self._uploads, collect_shared_garbage, self.store
                    )
                self.completed.extend(self.driver.completed)
                self.failed_checkpoints += self.driver.coordinator.num_failed
                self.driver = None

    def _deployment(
        self, graph: JobGraph, parallelism: int, restore_path: str | None, adopted: dict[str, int]
    ) -> messages.Deployment:
        cfg = self.spec.checkpoint
        return messages.Deployment(
            epoch=self.epoch,
            attempt=self.attempt,
            job_id=self.job_id,
            job_ref=self.spec.job_ref,
            job_args=list(self.spec.job_args),
            parallelism=parallelism,
            max_parallelism=self.spec.max_parallelism,
            placement=self.placement,
            addresses={
                tm: [self.tms[tm].registration.data_host, self.tms[tm].registration.data_port]
                for tm in set(self.placement.values())
            },
            checkpoint_dir=None if cfg is None else cfg.directory,
            checkpointing=cfg is not None,
            exactly_once=cfg is None or cfg.mode is CheckpointingMode.EXACTLY_ONCE,
            incremental=cfg is not None and cfg.incremental,
            state_backend=self.spec.state_backend,
            restore_path=restore_path,
            graph_fingerprint=graph.fingerprint(),
            batch_size=self.spec.batch_size,
            credits=self.spec.credits,
            adopted_max_parallelism=adopted,
        )

    async def _deploy(self, deployment: messages.Deployment) -> None:
        body = deployment.to_json()
        tms = sorted(set(self.placement.values()))
        results = await asyncio.gather(
            *(self.rpc.call(self.tms[tm].registration.rest_url, "/tm/deploy", body) for tm in tms),
            return_exceptions=True,
        )
        failed = [
            (tm, r) for tm, r in zip(tms, results, strict=True) if isinstance(r, BaseException)
        ]
        if failed:
            await self._probe_taskmanagers()
            tm, result = failed[0]
            raise _AttemptFailed(f"deploying to TaskManager {tm} failed: {result}")

    async def _supervise(self) -> str:
        driver = self.driver
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            self._check_heartbeats()
            if self._attempt_failure is not None:
                raise _AttemptFailed(self._attempt_failure)
            if self._cancel_requested:
                self.state = JobState.CANCELLING
                await self._cancel_everywhere()
                return "canceled"
            if driver is not None:
                driver.tick()
                if driver.stopped:
                    await self._cancel_everywhere()
                    return "rescale" if self._rescale_to is not None else "stopped"
                if self._rescale_to is not None and driver.savepoint is None:
                    driver.request_stop_checkpoint()
            elif self._rescale_to is not None:
                await self._cancel_everywhere()
                return "rescale"
            if self.task_states and all(s == "FINISHED" for s in self.task_states.values()):
                return "finished"

    async def _cancel_everywhere(self) -> None:
        body = {"epoch": self.epoch, "attempt": self.attempt}
        calls = [
            self.rpc.call(info.registration.rest_url, "/tm/cancel", body)
            for info in self.tms.values()
            if info.alive
        ]
        await asyncio.gather(*calls, return_exceptions=True)

    def running_time_s(self) -> float | None:
        if self.first_deployed is None:
            return None
        return (self.ended or time.monotonic()) - self.first_deployed

    async def close(self) -> None:
        await self.rpc.close()
        self._uploads.shutdown(wait=False)


class _RemotePort:
    """The checkpoint driver's view of a deployment spread over TaskManagers."""

    def __init__(self, jm: JobMaster) -> None:
        self.jm = jm
        self._calls: set[asyncio.Future[None]] = set()

    def live_tasks(self) -> set[tuple[int, int]]:
        return {k for k, s in self.jm.task_states.items() if s != "FINISHED"}

    def all_sources_ended(self) -> bool:
        graph = self.jm.graph
        assert graph is not None
        sources = [(v.id, i) for v in graph.vertices if v.is_source for i in range(v.parallelism)]
        return all(self.jm.task_states.get(k) in ("END_OF_INPUT", "FINISHED") for k in sources)

    def _broadcast(self, path: str, body: dict[str, Any]) -> None:
        jm = self.jm
        body = {"epoch": jm.epoch, "attempt": jm.attempt, **body}
        for tm in sorted(set(jm.placement.values())):
            info = jm.tms.get(tm)
            if info is not None and info.alive:
                call = asyncio.ensure_future(
                    _quiet(jm.rpc.call(info.registration.rest_url, path, body))
                )
                self._calls.add(call)
                call.add_done_callback(self._calls.discard)

    def trigger(self, barrier: CheckpointBarrier) -> None:
        self._broadcast("/tm/trigger", {"barrier": messages.barrier_to_json(barrier)})

    def notify_complete(self, checkpoint_id: int) -> None:
        self._broadcast("/tm/notify", {"checkpoint_id": checkpoint_id, "complete": True})

    def notify_aborted(self, checkpoint_id: int) -> None:
        self._broadcast("/tm/notify", {"checkpoint_id": checkpoint_id, "complete": False})

    def stop(self) -> None:
        self._broadcast("/tm/stop", {})


async def _quiet(call: Any) -> None:
    try:
        await call
    except Exception as exc:
        log.warning("RPC to a TaskManager failed: %s", exc)
