"""Running the operator: build its parts from an :class:`~.config.OperatorConfig`, start kopf.

``streamjob operator`` calls :func:`run`; tests and embedders call :func:`operate` with a stop
flag, a fake JobManager connector, a kmock API server URL. kopf treats every task created in its
event loop after it started as its own and cancels them all when it stops, so an embedder runs it
in a loop of its own (the tests use a thread).
"""

from __future__ import annotations

import asyncio
import threading

import kopf

from streamjob.operator import config as config_
from streamjob.operator import handlers, reconciler
from streamjob.operator.clients import jobmanager, kube


async def operate(
    config: config_.OperatorConfig,
    *,
    connector: jobmanager.Connector | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    client = kube.KubeClient(kube.configuration(server=config.kube_server))
    connector = connector or jobmanager.http_connector(
        address=config.jobmanager_address, timeout_s=config.jobmanager_timeout_s
    )
    worker = reconciler.Reconciler(client=client, connector=connector, settings=config.plan)
    registry = handlers.build_registry(reconciler=worker, config=config)
    try:
        await kopf.operator(
            registry=registry,
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            standalone=config.standalone,
            liveness_endpoint=config.liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await worker.close()
        client.close()


def run(config: config_.OperatorConfig) -> int:
    """Run until SIGINT/SIGTERM (kopf handles both and stops gracefully)."""
    asyncio.run(operate(config))
    return 0
