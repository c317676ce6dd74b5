"""Scenarios on real processes: suspend and resume, a savepoint upgrade, deletion.

The real kopf operator against kmock, every pod a real process (pod runner), checkpoints on
SeaweedFS, output into the exactly-once FileSink.

Aspects covered:
- suspend (``job.state: suspended``, upgradeMode last-state): every pod goes, the status says
  SUSPENDED and keeps the job id and the last checkpoint; resume: new pods under the same job
  id restore that checkpoint and the counts go on where they stopped;
- deletion with ``savepointOnDelete``: a final stop-with-savepoint (an Event names its path),
  then the pods, the Service and the ConfigMap are removed and the finalizer released; the
  checkpoints and the savepoint stay in storage; the committed output holds no duplicate and no
  gap;
- a savepoint upgrade (new image and entrypoint, upgradeMode savepoint): stop-with-savepoint,
  a new lineage (restore generation 1, a new job id) whose JobManager starts from that savepoint
  and runs the new code; the committed output equals the failure-free run's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamjob.operator.core import names
from streamjob.storage import factory
from tests.operator import jobs
from tests.operator.harness import S3Settings, Stack, job_spec

pytestmark = [pytest.mark.seaweedfs, pytest.mark.timeout(240)]

JOB = "wc"
EVENTS = 24_000
RATE = 1_200


def checkpoint_at_least(n: int) -> Callable[[dict[str, Any]], bool]:
    def check(status: dict[str, Any]) -> bool:
        job = status.get("jobStatus") or {}
        last = (status.get("lastCheckpoint") or {}).get("id", 0)
        return bool(job.get("state") == "RUNNING" and last >= n)

    return check


def jobmanager_args(stack: Stack) -> list[str]:
    pod = stack.cluster.pods()[names.jobmanager_pod(JOB)]
    args: list[str] = pod["spec"]["containers"][0]["args"]
    return args


async def test_suspend_resume_and_delete_keep_state_and_checkpoints(
    stack: Stack, s3: S3Settings, seaweedfs_checkpoint_url: Callable[[], str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    checkpoint_dir = seaweedfs_checkpoint_url()
    await stack.create_s3_secret(s3)
    spec = job_spec(
        out=out,
        events=EVENTS,
        rate=RATE,
        checkpoint_dir=checkpoint_dir,
        s3=s3,
        savepointOnDelete=True,
    )
    created = await stack.cluster.apply(JOB, spec)
    job_id = names.job_id(created["metadata"]["uid"], 0)
    await stack.wait_status(JOB, "a completed checkpoint", checkpoint_at_least(1))

    # suspend: every pod goes, the lineage and the last checkpoint stay in status
    await stack.cluster.patch_spec(JOB, {"job": {"state": "suspended"}})
    suspended = await stack.wait_status(
        JOB,
        "SUSPENDED with no pods",
        lambda s: s["lifecycleState"] == "SUSPENDED" and not stack.cluster.pods(),
    )
    assert suspended["jobStatus"]["state"] == "SUSPENDED"
    assert suspended["jobStatus"]["jobId"] == job_id
    last_before = suspended["lastCheckpoint"]["id"]
    assert last_before >= 1
    committed_while_suspended = jobs.committed(out)
    assert len(committed_while_suspended) < EVENTS, "the job ended before the suspend"

    # resume: the same job id restores its latest checkpoint
    await stack.cluster.patch_spec(JOB, {"job": {"state": "running"}})
    await stack.wait_status(
        JOB, "a new checkpoint after resume", checkpoint_at_least(last_before + 1)
    )
    status = await stack.cluster.status(JOB)
    assert status["jobStatus"]["jobId"] == job_id
    checkpoints = await stack.jobmanager(JOB, f"/jobs/{job_id}/checkpoints")
    restored = checkpoints["latest"]["restored"]
    assert restored is not None and restored["id"] >= last_before, checkpoints["latest"]
    assert "--from-savepoint" not in jobmanager_args(stack)

    # delete: a final savepoint, the children go, the checkpoints stay
    await stack.cluster.delete(JOB)

    async def gone() -> bool:
        return await stack.cluster.client.get_streamjob("default", JOB) is None

    await stack.cluster.wait_for("the StreamJob to be deleted", gone, timeout=90)
    assert stack.cluster.pods() == {}
    assert stack.api.live("v1/services", "default") == {}
    assert stack.api.live("v1/configmaps", "default") == {}
    final = [e["message"] for e in stack.cluster.events(JOB) if e["reason"] == "FinalSavepoint"]
    assert len(final) == 1, [(e["reason"], e["message"]) for e in stack.cluster.events(JOB)]
    savepoint = final[0].removeprefix("final savepoint at ")
    assert savepoint.startswith(f"{checkpoint_dir}/savepoints/savepoint-{job_id}-")
    storage = factory.open_storage(checkpoint_dir)
    kept = {o.key for o in storage.list(f"{job_id}/")}
    assert any(k.endswith("/_metadata") and "/chk-" in k for k in kept), sorted(kept)[:10]
    assert factory.open_storage(savepoint).exists("_metadata")
    deleted = next(e["message"] for e in stack.cluster.events(JOB) if e["reason"] == "Deleted")
    assert f"checkpoints are kept under {checkpoint_dir}/{job_id}" in deleted

    rows = jobs.committed(out)
    assert len(rows) >= len(committed_while_suspended)
    assert jobs.prefix_problems(rows) == []
    assert jobs.problems(rows, EVENTS) != [], "the job was meant to be stopped before its end"


async def test_a_savepoint_upgrade_restores_the_new_code_from_the_savepoint(
    stack: Stack, s3: S3Settings, seaweedfs_checkpoint_url: Callable[[], str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    await stack.create_s3_secret(s3)
    spec = job_spec(
        out=out,
        events=EVENTS,
        rate=RATE,
        checkpoint_dir=seaweedfs_checkpoint_url(),
        s3=s3,
        upgradeMode="savepoint",
    )
    created = await stack.cluster.apply(JOB, spec)
    uid = created["metadata"]["uid"]
    await stack.wait_status(JOB, "a completed checkpoint", checkpoint_at_least(1))
    old_pods = {n: p["metadata"]["uid"] for n, p in stack.cluster.pods().items()}

    entrypoint = spec["job"]["entrypoint"].replace(":build", ":build_v2")
    await stack.cluster.patch_spec(
        JOB, {"image": "streamjob:local-v2", "job": {"entrypoint": entrypoint}}
    )
    upgraded = await stack.wait_status(
        JOB,
        "the new lineage running",
        lambda s: (
            s["jobStatus"].get("restoreGeneration") == 1
            and s["jobStatus"].get("state") == "RUNNING"
            and s["lifecycleState"] == "STABLE"
        ),
        timeout=90,
    )
    new_id = names.job_id(uid, 1)
    assert upgraded["jobStatus"]["jobId"] == new_id != names.job_id(uid, 0)
    location = upgraded["upgradeSavepointPath"]
    assert upgraded["savepoint"]["state"] == "COMPLETED"
    assert upgraded["savepoint"]["location"] == location
    assert f"/savepoints/savepoint-{names.job_id(uid, 0)}-" in location
    args = jobmanager_args(stack)
    assert args[0] == entrypoint
    assert args[args.index("--from-savepoint") + 1] == location
    assert args[args.index("--job-id") + 1] == new_id
    pods = stack.cluster.pods()
    assert all(pods[n]["metadata"]["uid"] != uid for n, uid in old_pods.items())
    assert {p["spec"]["containers"][0]["image"] for p in pods.values()} == {"streamjob:local-v2"}
    checkpoints = await stack.jobmanager(JOB, f"/jobs/{new_id}/checkpoints")
    restored = checkpoints["latest"]["restored"]
    assert restored is not None and restored["path"] == location, checkpoints["latest"]
    await stack.cluster.wait_for(
        "the upgrade Events",
        lambda: {"SavepointCompleted", "JobIdChanged"} <= set(stack.cluster.event_reasons(JOB)),
    )

    await stack.wait_status(
        JOB, "the job to finish", lambda s: s["jobStatus"]["state"] == "FINISHED", timeout=150
    )
    assert jobs.problems(jobs.committed(out), EVENTS) == []
