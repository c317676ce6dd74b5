"""Savepoints on the distributed runtime (real processes on loopback).

The JobManager writes only a savepoint's ``_metadata``: the TaskManagers write the state into
the savepoint's directory in their own processes. A stop-with-savepoint through the REST API
ends the job with its sink's transactions committed; a second cluster, under a new job id,
starts from the savepoint at another parallelism, and the committed output of both runs
equals the failure-free run (nothing lost, nothing twice).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster.cluster import LocalCluster, local_cluster
from tests.cluster.test_processes import JOB, _check, _completed, _job_env, _restored_id


def _savepoint(cluster: LocalCluster, target: Path, *, stop: bool) -> str:
    job = cluster.job()
    assert job is not None
    response = cluster.post(
        f"/jobs/{job['id']}/savepoints", {"target_dir": str(target), "stop": stop}
    )
    assert response.status_code == 202, response.text
    trigger = response.json()["trigger_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = cluster.get(f"/jobs/{job['id']}/savepoints/{trigger}")
        if status["status"] != "IN_PROGRESS":
            assert status["status"] == "COMPLETED", status
            return str(status["location"])
        time.sleep(0.1)
    raise AssertionError(f"savepoint {trigger} did not complete\n{cluster.logs()}")


@pytest.mark.timeout(240)
def test_stop_with_savepoint_then_resume_elsewhere_at_another_parallelism(tmp_path: Path) -> None:
    events = 30000
    out, env = _job_env(tmp_path, events, rate=8000)
    savepoints = tmp_path / "savepoints"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with local_cluster(tmp_path / "first", env) as cluster:
        cluster.start_jobmanager(
            JOB,
            "-p",
            "2",
            "--checkpoint-dir",
            str(tmp_path / "chk"),
            "--checkpoint-interval",
            "1",
        )
        cluster.start_taskmanager()
        cluster.start_taskmanager()
        cluster.wait_for(lambda: _completed(cluster) >= 2, 60, "two completed checkpoints")
        intermediate = _savepoint(cluster, savepoints, stop=False)
        assert (Path(intermediate) / "_metadata").is_file()
        location = _savepoint(cluster, savepoints, stop=True)
        assert cluster.wait_exit(60) == 0, cluster.logs()
    assert location != intermediate and (Path(location) / "_metadata").is_file()
    state_files = [p for p in Path(location).iterdir() if p.name != "_metadata"]
    assert state_files, "the TaskManagers wrote no state into the savepoint's directory"
    with local_cluster(tmp_path / "second", env) as cluster:
        cluster.start_jobmanager(
            JOB,
            "-p",
            "3",
            "--checkpoint-dir",
            str(tmp_path / "chk-second"),
            "--checkpoint-interval",
            "1",
            "--from-savepoint",
            location,
        )
        for _ in range(3):
            cluster.start_taskmanager()
        cluster.wait_for(
            lambda: (j := cluster.job()) and j["state"] == "RUNNING", 60, "the resumed job"
        )
        assert _restored_id(cluster) is not None
        assert cluster.wait_exit(120) == 0, cluster.logs()
    _check(out, events)
