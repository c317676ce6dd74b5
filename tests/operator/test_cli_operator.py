"""``streamjob operator``: the command runs the real operator; SIGTERM stops it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tests.operator.harness import Cluster
from tests.operator.simulation import spec_dict

pytestmark = pytest.mark.timeout(60)


async def test_the_operator_command_reconciles_and_stops_on_sigterm(cluster: Cluster) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streamjob.cli",
        "--log-level",
        "INFO",
        "operator",
        "--kube-server",
        cluster.url,
        "--standalone",
        "--interval",
        "1",
        "--jobmanager-address",
        "pod-ip",
        env={**os.environ, "PYTHONSAFEPATH": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await cluster.apply("wc", spec_dict())
        await cluster.wait_for("the JobManager pod", lambda: "wc-jobmanager" in cluster.pods())
        assert "wc-taskmanager-1" in cluster.pods() or await cluster.wait_for(
            "the TaskManager pods", lambda: "wc-taskmanager-1" in cluster.pods()
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()[-3000:]
