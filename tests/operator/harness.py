"""The operator test harness: a kmock API server, the real kopf operator, pods as processes.

Shared by the tests (``conftest.py`` wraps these in fixtures) and ``bench/bench_operator.py``:

- :class:`Cluster`: what a user does with kubectl (apply, patch, scale, delete, read), through
  the Kubernetes client, plus waiting for a condition;
- :class:`RunningOperator`: the real kopf operator (``streamjob.operator.main.operate``) in a
  thread with its own event loop; ``restart()`` replaces it by a new one with no memory;
- :func:`running_stack`: all of it at once with a :class:`~tests.operator.podrunner.PodRunner`
  that runs every pod as a real ``streamjob jobmanager``/``taskmanager`` process, and the
  operator talking to each JobManager's REST API on its pod IP (:class:`Stack`);
- :func:`job_spec`: a StreamJob of ``tests/operator/jobs.py`` with checkpoints on S3 (a
  SeaweedFS server, its credentials in a Secret) or a ``file://`` directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import kmock

from streamjob.operator import config as config_
from streamjob.operator import main
from streamjob.operator.clients import kube
from streamjob.operator.clients.testing import TestingJobManagerClient
from streamjob.operator.core import model, names, plan, render
from tests.operator.kubeapi import ApiServer
from tests.operator.podrunner import PodRunner

NAMESPACE = "default"
ROOT = Path(__file__).resolve().parents[2]
JOB_FILE = ROOT / "tests" / "operator" / "jobs.py"
S3_SECRET = "s3-creds"


class Cluster:
    """What a user does with kubectl, through the Kubernetes client."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.url = str(api.url).rstrip("/")
        self.client = kube.KubeClient(kube.configuration(server=self.url))

    async def apply(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": model.API_VERSION,
            "kind": model.KIND,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
        created: dict[str, Any] = await self.client._run(
            self.client.custom.create_namespaced_custom_object,
            model.GROUP,
            model.VERSION,
            NAMESPACE,
            model.PLURAL,
            body,
        )
        return created

    async def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        await self.client._run(
            self.client.custom.patch_namespaced_custom_object,
            model.GROUP,
            model.VERSION,
            NAMESPACE,
            model.PLURAL,
            name,
            {"spec": spec},
        )

    async def scale(self, name: str, replicas: int) -> None:
        """``kubectl scale streamjob NAME --replicas N`` (the scale subresource)."""
        await self.client._run(
            self.client.custom.patch_namespaced_custom_object_scale,
            model.GROUP,
            model.VERSION,
            NAMESPACE,
            model.PLURAL,
            name,
            {"spec": {"replicas": replicas}},
        )

    async def delete(self, name: str) -> None:
        await self.client._run(
            self.client.custom.delete_namespaced_custom_object,
            model.GROUP,
            model.VERSION,
            NAMESPACE,
            model.PLURAL,
            name,
        )

    async def create_secret(self, name: str, data: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "stringData": data,
        }
        await self.client._run(self.client.core.create_namespaced_secret, NAMESPACE, body)

    async def get(self, name: str) -> dict[str, Any]:
        found = await self.client.get_streamjob(NAMESPACE, name)
        assert found is not None, f"StreamJob {name} is gone"
        return found

    def pods(self) -> dict[str, dict[str, Any]]:
        return self.api.live("v1/pods", NAMESPACE)

    def events(self, name: str) -> list[dict[str, Any]]:
        found = self.api.live("v1/events", NAMESPACE).values()
        return [e for e in found if e.get("involvedObject", {}).get("name") == name]

    def event_reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events(name)]

    async def wait_for(
        self,
        what: str,
        check: Callable[[], Awaitable[Any]] | Callable[[], Any],
        *,
        timeout: float = 15.0,
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while loop.time() < deadline:
            with contextlib.suppress(AssertionError, KeyError):
                last = check()
                if asyncio.iscoroutine(last):
                    last = await last
                if last:
                    return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})")

    async def status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.get(name)).get("status") or {}
        return found


class RunningOperator:
    """The operator in a thread with its own event loop (kopf cancels every task of its loop
    that it did not see before it started, test tasks included)."""

    def __init__(
        self, config: config_.OperatorConfig, fake: TestingJobManagerClient | None = None
    ) -> None:
        self.config = config
        #: None: the real HTTP client of each JobManager (``config.jobmanager_address``)
        self.connector = fake.connector() if fake is not None else None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.failure: BaseException | None = None

    async def start(self) -> None:
        self._stop = threading.Event()
        ready = threading.Event()

        def run() -> None:
            try:
                asyncio.run(
                    main.operate(
                        self.config,
                        connector=self.connector,
                        stop_flag=self._stop,
                        ready_flag=ready,
                    )
                )
            except BaseException as exc:  # surfaced by stop()
                self.failure = exc

        self._thread = threading.Thread(target=run, name="operator", daemon=True)
        self._thread.start()
        started = await asyncio.to_thread(ready.wait, 10)
        if self.failure is not None:
            raise self.failure
        assert started, "the operator did not start"

    async def stop(self) -> None:
        assert self._thread is not None
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 15)
        assert not self._thread.is_alive(), "the operator did not stop"
        if self.failure is not None:
            raise self.failure

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def restart(self) -> None:
        await self.stop()
        await self.start()


def operator_config(api_url: str, **changes: Any) -> config_.OperatorConfig:
    """The operator's settings in the tests: short intervals, no cooldown, kmock's URL."""
    base = config_.OperatorConfig(
        reconcile_interval_s=0.5,
        plan=plan.PlanSettings(rescale_cooldown_s=0.0, savepoint_retry_s=1.0),
        kube_server=api_url,
        standalone=True,
        watch_server_timeout_s=1,
        watch_client_timeout_s=2,
    )
    return dataclasses.replace(base, **changes)


# -- the whole stack with real processes ---------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class S3Settings:
    """Where a StreamJob's pods find the S3 server (e.g. the tests' SeaweedFS)."""

    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str


@dataclasses.dataclass
class Stack:
    api: ApiServer
    cluster: Cluster
    pods: PodRunner
    operator: RunningOperator
    log_dir: Path
    #: (seconds since the start, what): printed when the stack closes, for slow or failed runs
    timeline: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.monotonic)

    def mark(self, what: str) -> None:
        self.timeline.append((time.monotonic() - self.started, what))

    async def create_s3_secret(self, s3: S3Settings) -> None:
        await self.cluster.create_secret(
            S3_SECRET,
            {"AWS_ACCESS_KEY_ID": s3.access_key_id, "AWS_SECRET_ACCESS_KEY": s3.secret_access_key},
        )

    async def wait_status(
        self,
        name: str,
        what: str,
        check: Callable[[dict[str, Any]], Any],
        *,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Wait until ``check(status)`` is truthy; a timeout names the last status and the
        tail of every pod's log."""

        async def probe() -> dict[str, Any] | None:
            found = await self.cluster.status(name)
            return found if check(found) else None

        try:
            found: dict[str, Any] = await self.cluster.wait_for(what, probe, timeout=timeout)
        except AssertionError as exc:
            self.mark(f"gave up waiting for {what}")
            raise AssertionError(f"{exc}\n{self.log_tails()}") from None
        self.mark(what)
        return found

    def jobmanager_ip(self, name: str) -> str:
        return self.pods.by_name(names.jobmanager_pod(name)).ip

    async def jobmanager(self, name: str, path: str) -> Any:
        """GET a JobManager REST path (``/jobs/ID/checkpoints``...) on its pod IP."""
        url = f"http://{self.jobmanager_ip(name)}:{render.JOBMANAGER_REST_PORT}{path}"
        async with httpx.AsyncClient(timeout=5.0) as http:
            response = await http.get(url)
        response.raise_for_status()
        return response.json()

    def event_lines(self) -> list[str]:
        found = self.api.live("v1/events", NAMESPACE).values()
        return [f"{e.get('reason')}: {e.get('message')}" for e in found]

    def log_tails(self, lines: int = 12) -> str:
        parts = []
        for pod in self.pods.pods.values():
            if pod.log_path is None or not pod.log_path.exists():
                continue
            text = pod.log_path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {pod.log_path.name} ({pod.phase})\n" + "\n".join(text))
        return "\n".join(parts)


@contextlib.asynccontextmanager
async def running_stack(log_dir: Path, **config_changes: Any) -> AsyncIterator[Stack]:
    """kmock + the real operator (its JobManager calls on pod IPs) + pods as real processes."""
    server = ApiServer()
    server.install()
    async with server as api, kmock.Server(api):
        cluster = Cluster(api)
        config = operator_config(cluster.url, jobmanager_address="pod-ip", **config_changes)
        operator = RunningOperator(config)
        try:
            async with PodRunner(
                api_url=cluster.url, namespace=NAMESPACE, execute=True, log_dir=log_dir
            ) as pods:
                await operator.start()
                stack = Stack(
                    api=api, cluster=cluster, pods=pods, operator=operator, log_dir=log_dir
                )
                try:
                    yield stack
                finally:
                    stack.mark("closing")
                    print("timeline:", *(f"{t:7.2f}s {w}" for t, w in stack.timeline), sep="\n")
                    print("events:", *stack.event_lines(), sep="\n")
                    if operator.running:
                        await operator.stop()
        finally:
            cluster.client.close()


def job_spec(
    *,
    out: Path,
    events: int,
    rate: float,
    checkpoint_dir: str,
    s3: S3Settings | None = None,
    parallelism: int = 2,
    entrypoint: str = "build",
    interval: str = "1s",
    **job: Any,
) -> dict[str, Any]:
    """A StreamJob of ``tests/operator/jobs.py``: EVENTS records at RATE/s into OUT."""
    checkpoints: dict[str, Any] = {"dir": checkpoint_dir, "interval": interval}
    if s3 is not None:
        checkpoints["s3"] = {
            "endpoint": s3.endpoint,
            "region": s3.region,
            "pathStyle": True,
            "credentialsSecret": S3_SECRET,
        }
    return {
        "image": "streamjob:local",
        "job": {
            "entrypoint": f"{JOB_FILE}:{entrypoint}",
            "args": [str(out), str(events), f"{rate:g}"],
            "parallelism": parallelism,
            **job,
        },
        "checkpoints": checkpoints,
        # failovers at once: the scenarios time recovery, not backoff
        "restartStrategy": {"type": "fixed-delay", "attempts": 10, "delay": "200ms"},
    }
