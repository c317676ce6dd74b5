"""The distributed runtime with real processes on loopback.

Aspects covered: a keyed job at parallelism 2 over a JobManager and two TaskManager processes
(TCP data plane, HTTP control plane) commits exactly the expected output; a TaskManager killed
with SIGKILL (detected by heartbeat timeout, or reported failed through the REST API) and the
job fails over from the latest checkpoint, exactly once; the JobManager killed with SIGKILL and
restarted resumes from storage; every keyed record ran on the subtask owning its key group.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from streamjob import keygroups
from tests.cluster.cluster import local_cluster
from tests.cluster.jobs import committed, expected_pairs, windowed_reference

JOB = "tests/cluster/jobs.py:build"


def _job_env(tmp_path: Path, events: int, *, rate: int) -> tuple[Path, dict[str, str]]:
    """The sink directory and the environment the job processes read their settings from."""
    out = tmp_path / "out"
    env = {
        "STREAMJOB_TEST_OUT": str(out),
        "STREAMJOB_TEST_EVENTS": str(events),
        "STREAMJOB_TEST_RATE": str(rate),
    }
    return out, env


def _failover_args(tmp_path: Path, *, heartbeat_timeout: str) -> tuple[str, ...]:
    """JobManager arguments for the failure tests: p = 2, fast checkpoints and restarts."""
    return (
        JOB,
        "-p",
        "2",
        "--checkpoint-dir",
        str(tmp_path / "chk"),
        "--checkpoint-interval",
        "0.2",
        "--heartbeat-timeout",
        heartbeat_timeout,
        "--restart-strategy",
        "fixed-delay:5:0.2",
    )


def _check(out: Path, events: int, p: int | None = None) -> None:
    rows = committed(out)
    got = Counter((k, n) for k, n, _ in rows)
    want = expected_pairs(events)
    dups = {k: c for k, c in got.items() if c > 1}
    assert not dups, f"duplicates: {list(dups)[:3]}"
    assert got == want, f"missing {len(want - got)}"
    if p is not None:
        for key, _, subtask in rows:
            kg = keygroups.assign_to_key_group(key, 128)
            assert subtask == keygroups.operator_index_for_key_group(128, p, kg)


@pytest.mark.timeout(120)
def test_a_job_over_two_taskmanager_processes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {
        "STREAMJOB_TEST_OUT": str(out),
        "STREAMJOB_TEST_EVENTS": "8000",
        "STREAMJOB_TEST_RATE": "20000",
    }
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(
            JOB,
            "-p",
            "2",
            "--checkpoint-dir",
            str(tmp_path / "chk"),
            "--checkpoint-interval",
            "0.1",
        )
        cluster.start_taskmanager()
        cluster.start_taskmanager()
        assert cluster.wait_exit(90) == 0, cluster.logs()
    _check(out, 8000, p=2)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("detection", ["heartbeat", "report"])
def test_a_killed_taskmanager_fails_over_exactly_once(tmp_path: Path, detection: str) -> None:
    events = 30000
    out, env = _job_env(tmp_path, events, rate=10000)
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(*_failover_args(tmp_path, heartbeat_timeout="2"))
        cluster.start_taskmanager()
        victim = cluster.start_taskmanager()
        cluster.wait_for(lambda: _completed(cluster) >= 2, 60, "two completed checkpoints")
        pod_uid = next(
            t["pod_uid"] for t in cluster.get("/internal/taskmanagers") if t["id"] == "tm-1"
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        if detection == "report":
            assert cluster.post(f"/taskmanagers/{pod_uid}/failed").status_code == 200
        cluster.start_taskmanager()  # the replacement pod
        assert cluster.wait_exit(120) == 0, cluster.logs()
    _check(out, events)


def _completed(cluster: object) -> int:
    job = cluster.job()  # type: ignore[attr-defined]
    if not job:
        return 0
    stats = cluster.get(f"/jobs/{job['id']}/checkpoints")  # type: ignore[attr-defined]
    return int(stats["counts"]["completed"])


def _restored_id(cluster: object) -> int | None:
    job = cluster.job()  # type: ignore[attr-defined]
    assert job is not None
    restored = cluster.get(f"/jobs/{job['id']}/checkpoints")["latest"]["restored"]  # type: ignore[attr-defined]
    return None if restored is None else int(restored["id"])


@pytest.mark.timeout(180)
def test_a_killed_jobmanager_restarts_and_resumes_from_storage(tmp_path: Path) -> None:
    events = 30000
    out, env = _job_env(tmp_path, events, rate=10000)
    args = _failover_args(tmp_path, heartbeat_timeout="2")
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(*args)
        cluster.start_taskmanager()
        cluster.start_taskmanager()
        cluster.wait_for(lambda: _completed(cluster) >= 2, 60, "two completed checkpoints")
        assert cluster.jobmanager is not None
        cluster.jobmanager.send_signal(signal.SIGKILL)
        cluster.jobmanager.wait(5)
        cluster.start_jobmanager(*args)  # the replacement JobManager pod
        cluster.wait_for(
            lambda: (j := cluster.job()) and j["state"] == "RUNNING", 30, "the new JobManager"
        )
        restored = _restored_id(cluster)
        assert restored is not None and restored >= 2
        assert cluster.wait_exit(120) == 0, cluster.logs()
    _check(out, events)


@pytest.mark.timeout(240)
def test_rescale_2_3_1_through_the_rest_api(tmp_path: Path) -> None:
    events = 40000
    out, env = _job_env(tmp_path, events, rate=10000)
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(
            JOB,
            "-p",
            "2",
            "--checkpoint-dir",
            str(tmp_path / "chk"),
            "--checkpoint-interval",
            "0.2",
        )
        for _ in range(3):
            cluster.start_taskmanager()
        for target in (3, 1):
            before = _completed(cluster)
            cluster.wait_for(lambda b=before: _completed(cluster) >= b + 2, 60, "progress")
            job = cluster.job()
            assert job is not None
            response = cluster.post(f"/jobs/{job['id']}/rescale", {"parallelism": target})
            assert response.status_code == 202, response.text
            cluster.wait_for(
                lambda t=target: (
                    (j := cluster.job()) and j["parallelism"] == t and j["state"] == "RUNNING"
                ),
                60,
                f"running at parallelism {target}",
            )
            assert _restored_id(cluster) is not None
        assert cluster.wait_exit(180) == 0, cluster.logs()
    _check(out, events)


@pytest.mark.timeout(240)
def test_a_sigstopped_taskmanager_is_replaced_and_its_zombie_does_no_harm(tmp_path: Path) -> None:
    events = 30000
    out, env = _job_env(tmp_path, events, rate=10000)
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(*_failover_args(tmp_path, heartbeat_timeout="1.5"))
        cluster.start_taskmanager()
        zombie = cluster.start_taskmanager()
        cluster.wait_for(lambda: _completed(cluster) >= 2, 60, "two completed checkpoints")
        attempt = cluster.job()["attempt"]  # type: ignore[index]
        zombie.send_signal(signal.SIGSTOP)
        cluster.start_taskmanager()  # the replacement
        cluster.wait_for(
            lambda: (j := cluster.job()) and j["attempt"] > attempt and j["state"] == "RUNNING",
            60,
            "the failover onto the replacement",
        )
        lost = [t for t in cluster.get("/internal/taskmanagers") if t["id"] == "tm-1"]
        assert lost and not lost[0]["alive"] and "heartbeat" in lost[0]["lost_reason"]
        zombie.send_signal(signal.SIGCONT)  # the zombie wakes up mid-job
        assert cluster.wait_exit(150) == 0, cluster.logs()
    _check(out, events)


@pytest.mark.timeout(120)
def test_a_taskmanager_with_different_job_code_is_refused(tmp_path: Path) -> None:
    env = {"STREAMJOB_TEST_OUT": str(tmp_path / "out"), "STREAMJOB_TEST_EVENTS": "1000"}
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(
            JOB, "-p", "1", "--restart-strategy", "fixed-delay:1:0.1", "--stay"
        )
        cluster.env["STREAMJOB_TEST_VARIANT"] = "1"
        cluster.start_taskmanager()
        job = cluster.wait_for(
            lambda: (j := cluster.job()) and j["state"] == "FAILED" and j, 60, "FAILED"
        )
        assert "builds a different graph" in job["last_failure"]
        assert "same image" in job["last_failure"]


@pytest.mark.seaweedfs
@pytest.mark.timeout(420)
@pytest.mark.parametrize("job", ["w1", "w2"])
def test_random_taskmanager_kills_and_a_jobmanager_kill_on_seaweedfs(
    tmp_path: Path, job: str, seaweedfs_checkpoint_url: Callable[[], str]
) -> None:
    """Three TaskManager SIGKILLs at random moments and one JobManager SIGKILL, with the
    checkpoints on a real S3 server: the committed output equals the failure-free one."""
    rng = random.Random(f"{job}-kills")
    events = 36000
    out, env = _job_env(tmp_path, events, rate=6000)
    entry = JOB if job == "w1" else "tests/cluster/jobs.py:build_windowed"
    args = (
        entry,
        "-p",
        "2",
        "--checkpoint-dir",
        seaweedfs_checkpoint_url(),
        "--checkpoint-interval",
        "0.3",
        "--heartbeat-timeout",
        "2",
        "--restart-strategy",
        "fixed-delay:20:0.2",
    )
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(*args)
        cluster.start_taskmanager()
        cluster.start_taskmanager()
        kills = 0
        for step in range(4):
            cluster.wait_for(
                lambda: (j := cluster.job()) and j["state"] == "RUNNING", 60, "a running job"
            )
            time.sleep(rng.uniform(0.5, 1.2))
            if step == 2:
                assert cluster.jobmanager is not None
                cluster.jobmanager.send_signal(signal.SIGKILL)
                cluster.jobmanager.wait(5)
                cluster.start_jobmanager(*args)
                continue
            live = [p for p in cluster.taskmanagers if p.poll() is None]
            victim = rng.choice(live)
            victim.send_signal(signal.SIGKILL)
            victim.wait(5)
            kills += 1
            cluster.start_taskmanager()
        assert kills == 3
        assert cluster.wait_exit(300) == 0, cluster.logs()
    if job == "w1":
        _check(out, events)
    else:
        got = Counter(tuple(r) for r in committed(out))
        assert got == windowed_reference(events)
