"""Scenario on real processes: apply a StreamJob, see it checkpoint, lose a TaskManager pod.

The real kopf operator against kmock; every pod it creates runs as a real ``streamjob
jobmanager``/``taskmanager`` process (pod runner), checkpoints go to SeaweedFS (the credentials
through a Secret), the job writes into the exactly-once FileSink.

Aspects covered:
- apply: the job runs at parallelism 2 under the job id derived from the StreamJob's uid, and
  its last completed checkpoint (an ``s3://`` path under that job id) appears in status;
- a TaskManager pod deleted mid-run: its process is stopped, the operator creates a replacement
  (same name, new uid) and reports the lost pod to the JobManager; the job restores a real
  checkpoint (id > 0);
- then the JobManager's process dies: the operator replaces its pod, the new JobManager finds
  the latest checkpoint in storage under the same job id, the TaskManagers find it through the
  Service (its address stays, its backend changes) and the job finishes;
- the committed output equals the failure-free run's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamjob.operator.core import names
from tests.operator import jobs
from tests.operator.harness import NAMESPACE, S3Settings, Stack, job_spec

pytestmark = [pytest.mark.seaweedfs, pytest.mark.timeout(240)]

JOB = "wc"
JM = names.jobmanager_pod(JOB)
#: about 25 s of input at the source's rate: long enough to act on a running job twice
EVENTS = 30_000
RATE = 1_200


def running_with_checkpoint(status: dict[str, Any]) -> bool:
    job = status.get("jobStatus") or {}
    return job.get("state") == "RUNNING" and (status.get("lastCheckpoint") or {}).get("id", 0) >= 1


def checkpoint_after(restored: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    def check(status: dict[str, Any]) -> bool:
        return bool((status.get("lastCheckpoint") or {}).get("id", 0) > restored["id"])

    return check


async def test_lost_taskmanager_and_jobmanager_pods_recover_with_exactly_once_output(
    stack: Stack, s3: S3Settings, seaweedfs_checkpoint_url: Callable[[], str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    checkpoint_dir = seaweedfs_checkpoint_url()
    await stack.create_s3_secret(s3)
    spec = job_spec(out=out, events=EVENTS, rate=RATE, checkpoint_dir=checkpoint_dir, s3=s3)
    created = await stack.cluster.apply(JOB, spec)
    job_id = names.job_id(created["metadata"]["uid"], 0)

    # (a) it runs, and its last checkpoint shows in status
    status = await stack.wait_status(JOB, "a completed checkpoint", running_with_checkpoint)
    assert status["jobStatus"]["jobId"] == job_id
    assert status["jobStatus"]["parallelism"] == 2
    assert status["lastCheckpoint"]["path"].startswith(f"{checkpoint_dir}/{job_id}/chk-")
    assert status["taskManagers"]["ready"] == 2

    # (b) a TaskManager pod is deleted while the job runs
    victim = stack.cluster.pods()["wc-taskmanager-1"]["metadata"]["uid"]
    committed_before = len(jobs.committed(out))
    assert committed_before < EVENTS, "the job ended before the failure: raise EVENTS"
    await stack.cluster.client.delete_pod(NAMESPACE, "wc-taskmanager-1")

    def replaced() -> bool:
        pod = stack.cluster.pods().get("wc-taskmanager-1")
        return pod is not None and pod["metadata"]["uid"] != victim

    await stack.cluster.wait_for("a new wc-taskmanager-1 pod", replaced, timeout=30)
    recovered = await stack.wait_status(
        JOB,
        "the job to run again after a restart",
        lambda s: s["jobStatus"].get("restarts", 0) >= 1 and s["jobStatus"]["state"] == "RUNNING",
    )
    assert recovered["jobStatus"]["jobId"] == job_id  # a failover keeps the lineage
    checkpoints = await stack.jobmanager(JOB, f"/jobs/{job_id}/checkpoints")
    restored = checkpoints["latest"]["restored"]
    assert restored is not None and restored["id"] >= 1, checkpoints["latest"]
    # the JobManager hears of the loss from the operator, or found it first (the stopped
    # process stops answering), never only from a heartbeat timeout much later
    told = [e["message"] for e in stack.cluster.events(JOB) if e["reason"] == "TaskManagerFailed"]
    assert any(victim in m and ("reported" in m or "already knew" in m) for m in told), told

    # the JobManager process dies (as an OOM kill would): its pod is replaced, the job resumes
    await stack.wait_status(JOB, "a checkpoint of the recovered job", checkpoint_after(restored))
    old_jm = stack.cluster.pods()[JM]["metadata"]["uid"]
    assert len(jobs.committed(out)) < EVENTS, "the job ended before the failure: raise EVENTS"
    await stack.pods.fail(JM)

    def jm_replaced() -> bool:
        pod = stack.cluster.pods().get(JM)
        return pod is not None and pod["metadata"]["uid"] != old_jm

    await stack.cluster.wait_for("a new JobManager pod", jm_replaced, timeout=30)
    resumed = await stack.wait_status(
        JOB,
        "the new JobManager running the job",
        lambda s: (
            s["jobStatus"].get("state") in ("RUNNING", "FINISHED")
            and stack.pods.by_name(JM).uid != old_jm
        ),
    )
    assert resumed["jobStatus"]["jobId"] == job_id
    checkpoints = await stack.jobmanager(JOB, f"/jobs/{job_id}/checkpoints")
    from_storage = checkpoints["latest"]["restored"]
    assert from_storage is not None and from_storage["id"] > restored["id"], checkpoints["latest"]
    assert "PodReplaced" in stack.cluster.event_reasons(JOB)

    final = await stack.wait_status(
        JOB, "the job to finish", lambda s: s["jobStatus"]["state"] == "FINISHED", timeout=150
    )
    assert final["jobStatus"]["jobId"] == job_id
    rows = jobs.committed(out)
    assert jobs.problems(rows, EVENTS) == []
    assert {subtask for _, _, subtask in rows} == {0, 1}
