"""Fixtures of the operator tests: a kmock API server, a pod runner, the real kopf operator.

The pieces live in :mod:`tests.operator.harness` (the benchmark uses them too):

- ``api``: :class:`~tests.operator.kubeapi.ApiServer` (kmock with metadata stamping, schema
  validation and pruning) serving HTTP on a free port;
- ``cluster``: a small client for tests (apply, patch, scale, delete, read, wait);
- ``fake_jobmanager``: the :class:`TestingJobManagerClient` every JobManager call goes to;
- ``pods``: a :class:`~tests.operator.podrunner.PodRunner` that simulates pods (no processes);
  ``stack`` runs them as real processes (:func:`~tests.operator.harness.running_stack`), with
  ``s3`` pointing a StreamJob's pods at the session's SeaweedFS server;
- ``operator``: the real kopf operator (``streamjob.operator.main.operate``) in a thread of its
  own, with short watch timeouts so it stops in about a second; ``operator.restart()`` replaces
  it by a new one (a new process would have no memory either).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import kmock
import pytest
import pytest_asyncio

from streamjob.operator import config as config_
from streamjob.operator.clients.testing import TestingJobManagerClient
from streamjob.storage import seaweedfs
from tests.operator import harness
from tests.operator.harness import NAMESPACE, Cluster, RunningOperator
from tests.operator.kubeapi import ApiServer
from tests.operator.podrunner import PodRunner


@pytest_asyncio.fixture
async def api() -> AsyncIterator[ApiServer]:
    server = ApiServer()
    server.install()
    async with server as handler, kmock.Server(handler):
        yield handler


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


@pytest.fixture
def operator_config(cluster: Cluster) -> config_.OperatorConfig:
    return harness.operator_config(cluster.url)


@pytest_asyncio.fixture
async def operator(
    operator_config: config_.OperatorConfig, fake_jobmanager: TestingJobManagerClient
) -> AsyncIterator[RunningOperator]:
    running = RunningOperator(operator_config, fake_jobmanager)
    await running.start()
    yield running
    await running.stop()


# -- real processes --------------------------------------------------------------------------------
@pytest.fixture
def s3(shared_seaweedfs: seaweedfs.SeaweedFSServer) -> harness.S3Settings:
    """The session's SeaweedFS, as a StreamJob's pods reach it (credentials in a Secret)."""
    return harness.S3Settings(
        endpoint=shared_seaweedfs.endpoint_url,
        region=shared_seaweedfs.region,
        access_key_id=shared_seaweedfs.access_key_id,
        secret_access_key=shared_seaweedfs.secret_access_key,
    )


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[harness.Stack]:
    """kmock, the real operator, and every pod as a real process (logs in ``tmp_path/logs``)."""
    async with harness.running_stack(tmp_path / "logs") as found:
        yield found
