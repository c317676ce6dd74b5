"""End to end on one machine: the operator's pods run as real ``streamjob`` processes.

The kopf operator renders the JobManager and TaskManager pods; the pod runner runs their exact
commands on 127.0.0.N (the TaskManagers reach the JobManager through its Service name); the
operator reaches the JobManager's REST API through its pod IP (``--jobmanager-address pod-ip``).
A bounded job runs at parallelism 2, checkpoints, and finishes; the status reports it. (The
failover, rescale and upgrade scenarios on real processes build on this harness.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from streamjob.operator import config as config_
from tests.operator.harness import NAMESPACE, Cluster, RunningOperator
from tests.operator.podrunner import PodRunner

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]


async def test_a_bounded_job_runs_checkpoints_and_finishes(
    cluster: Cluster, operator_config: config_.OperatorConfig, tmp_path: Path
) -> None:
    real = RunningOperator(
        dataclasses.replace(operator_config, jobmanager_address="pod-ip"), fake=None
    )
    await real.start()
    spec = {
        "image": "local",
        "job": {"entrypoint": str(ROOT / "examples" / "wordcount.py"), "parallelism": 2},
        "checkpoints": {"dir": f"file://{tmp_path / 'checkpoints'}", "interval": "1s"},
    }
    try:
        async with PodRunner(
            api_url=cluster.url, namespace=NAMESPACE, execute=True, log_dir=tmp_path / "logs"
        ):
            await cluster.apply("wc", spec)

            async def finished() -> dict[str, Any] | None:
                status = await cluster.status("wc")
                done = status.get("jobStatus", {}).get("state") == "FINISHED"
                return status if done else None

            status = await cluster.wait_for("the job to finish", finished, timeout=60)
    finally:
        await real.stop()
    assert status["jobStatus"]["parallelism"] == 2
    assert status["lastCheckpoint"]["id"] >= 1
    assert (tmp_path / "checkpoints" / status["jobStatus"]["jobId"]).is_dir()
