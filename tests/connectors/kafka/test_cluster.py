"""Kafka exactly-once on the distributed runtime: a TaskManager process killed with SIGKILL.

A JobManager and two TaskManager processes on loopback run ``cluster_job.py`` (topic ->
keyed count -> topic, exactly-once sink, checkpoints every 200 ms). The source is
rate-limited (>= 10 s of input), so the kill lands mid-stream even on a loaded machine. After
two completed checkpoints one TaskManager is SIGKILLed (its open transactions die with it,
unaborted), a replacement starts, and the job fails over from the latest checkpoint. The
output topic, read with ``read_committed``, holds exactly the expected output: the killed
process's transactions were committed (if a completed checkpoint held them) or aborted,
never duplicated or lost, and none is left open (which would stall ``read_committed``
readers).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from streamjob.checkpoint.restart import NoRestart  # noqa: F401 - documents the failover path
from streamjob.testing import TestingSink
from tests.checkpoint.jobs import assert_exactly_once
from tests.cluster.cluster import LocalCluster, local_cluster
from tests.connectors.kafka.conftest import unique
from tests.connectors.kafka.jobs import fill_input, output_rows

EVENTS = 6_000
JOB = "tests/connectors/kafka/cluster_job.py:build"


def _completed(cluster: LocalCluster) -> int:
    job = cluster.job()
    if not job:
        return 0
    return int(cluster.get(f"/jobs/{job['id']}/checkpoints")["counts"]["completed"])


def _restored(cluster: LocalCluster) -> int | None:
    job = cluster.job()
    if not job:
        return None
    latest = cluster.get(f"/jobs/{job['id']}/checkpoints")["latest"]
    restored = latest.get("restored") if latest else None
    return None if restored is None else int(restored["id"])


@pytest.mark.timeout(180)
def test_a_sigkilled_taskmanager_leaves_exactly_once_output(
    bootstrap: str, topic: Callable[..., str], tmp_path: Path
) -> None:
    source, out = topic(3, "in"), topic(2, "out")
    fill_input(bootstrap, source, EVENTS, 3)
    env = {
        "STREAMJOB_TEST_KAFKA": bootstrap,
        "STREAMJOB_TEST_IN": source,
        "STREAMJOB_TEST_OUT": out,
        "STREAMJOB_TEST_PREFIX": unique("eos"),
        "STREAMJOB_TEST_RATE": "600",  # >= 10 s of input: the kill lands mid-stream
    }
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(
            JOB,
            "-p",
            "2",
            "--checkpoint-dir",
            str(tmp_path / "chk"),
            "--checkpoint-interval",
            "0.2",
            "--heartbeat-timeout",
            "2",
            "--restart-strategy",
            "fixed-delay:5:0.2",
        )
        cluster.start_taskmanager()
        victim = cluster.start_taskmanager()
        cluster.wait_for(lambda: _completed(cluster) >= 2, 90, "two completed checkpoints")
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        cluster.start_taskmanager()  # the replacement
        cluster.wait_for(lambda: _restored(cluster) is not None, 90, "a restore")
        assert (_restored(cluster) or 0) > 0
        assert cluster.wait_exit(150) == 0, cluster.logs()
    assert_exactly_once(TestingSink(output_rows(bootstrap, out)), EVENTS)
