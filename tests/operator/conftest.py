"""Fixtures of the operator tests: a kmock API server, a pod runner, the real kopf operator.

- ``api``: :class:`~tests.operator.kubeapi.ApiServer` (kmock with metadata stamping, schema
  validation and pruning) serving HTTP on a free port;
- ``cluster``: a small client for tests (apply, patch, scale, delete, read, wait);
- ``fake_jobmanager``: the :class:`TestingJobManagerClient` every JobManager call goes to;
- ``pods``: a :class:`~tests.operator.podrunner.PodRunner` that simulates pods (no processes);
  a test that wants real processes builds its own with ``execute=True``;
- ``operator``: the real kopf operator (``streamjob.operator.main.operate``) in this event loop,
  with short watch timeouts so it stops in about a second; ``operator.restart()`` replaces it by
  a new one (a new process would have no memory either).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kmock
import pytest
import pytest_asyncio

from streamjob.operator import config as config_
from streamjob.operator import main
from streamjob.operator.clients import kube
from streamjob.operator.clients.testing import TestingJobManagerClient
from streamjob.operator.core import model, plan
from tests.operator.kubeapi import ApiServer
from tests.operator.podrunner import PodRunner

NAMESPACE = "default"


@pytest_asyncio.fixture
async def api() -> AsyncIterator[ApiServer]:
    server = ApiServer()
    server.install()
    async with server as handler, kmock.Server(handler):
        yield handler


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


@pytest_asyncio.fixture
async def cluster(api: ApiServer) -> AsyncIterator[Cluster]:
    found = Cluster(api)
    yield found
    found.client.close()


@pytest.fixture
def fake_jobmanager() -> TestingJobManagerClient:
    fake = TestingJobManagerClient()
    fake.auto_run = 2
    return fake


@pytest_asyncio.fixture
async def pods(cluster: Cluster) -> AsyncIterator[PodRunner]:
    async with PodRunner(api_url=cluster.url, namespace=NAMESPACE) as runner:
        yield runner


class RunningOperator:
    """The operator in a thread with its own event loop (kopf cancels every task of its loop
    that it did not see before it started, test tasks included)."""

    def __init__(
        self, config: config_.OperatorConfig, fake: TestingJobManagerClient | None
    ) -> None:
        self.config = config
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

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture
def operator_config(cluster: Cluster) -> config_.OperatorConfig:
    return config_.OperatorConfig(
        reconcile_interval_s=0.5,
        plan=plan.PlanSettings(rescale_cooldown_s=0.0, savepoint_retry_s=1.0),
        kube_server=cluster.url,
        standalone=True,
        watch_server_timeout_s=1,
        watch_client_timeout_s=2,
    )


@pytest_asyncio.fixture
async def operator(
    operator_config: config_.OperatorConfig, fake_jobmanager: TestingJobManagerClient
) -> AsyncIterator[RunningOperator]:
    running = RunningOperator(operator_config, fake_jobmanager)
    await running.start()
    yield running
    await running.stop()
