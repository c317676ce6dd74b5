"""Scenario on real processes: rescale 2 -> 3 with its state, the operator restarted mid-way.

The real kopf operator against kmock, every pod a real process (pod runner), checkpoints on
SeaweedFS, output into the exactly-once FileSink.

Aspects covered:
- ``spec.job.parallelism`` 2 -> 3 on a running job: the operator records the rescale in status,
  starts ``wc-taskmanager-2``, and asks the JobManager to rescale once it is ready; the job
  restores its state at parallelism 3 (a real checkpoint, id > 0) and the third subtask works;
- the operator is stopped and a new one started while the rescale is in flight: the new one
  continues it from the status (no second pod, the same job id and lineage);
- the committed output equals the failure-free run's (no count lost or repeated).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamjob import keygroups
from streamjob.operator.core import names
from tests.operator import jobs
from tests.operator.harness import S3Settings, Stack, job_spec

pytestmark = [pytest.mark.seaweedfs, pytest.mark.timeout(240)]

JOB = "wc"
EVENTS = 24_000
RATE = 1_200


def running_with_checkpoint(status: dict[str, Any]) -> bool:
    job = status.get("jobStatus") or {}
    return job.get("state") == "RUNNING" and (status.get("lastCheckpoint") or {}).get("id", 0) >= 1


async def test_a_rescale_2_to_3_keeps_the_state_across_an_operator_restart(
    stack: Stack, s3: S3Settings, seaweedfs_checkpoint_url: Callable[[], str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    await stack.create_s3_secret(s3)
    spec = job_spec(
        out=out, events=EVENTS, rate=RATE, checkpoint_dir=seaweedfs_checkpoint_url(), s3=s3
    )
    created = await stack.cluster.apply(JOB, spec)
    job_id = names.job_id(created["metadata"]["uid"], 0)
    await stack.wait_status(JOB, "a completed checkpoint", running_with_checkpoint)

    await stack.cluster.patch_spec(JOB, {"job": {"parallelism": 3}})
    in_flight = await stack.wait_status(
        JOB,
        "the rescale recorded in status",
        lambda s: (s.get("reconciliation") or {}).get("rescale", {}).get("to") == 3,
    )
    assert in_flight["jobStatus"]["parallelism"] == 2
    await stack.operator.restart()  # a new operator, no memory: only the status tells it

    rescaled = await stack.wait_status(
        JOB,
        "the job running at parallelism 3",
        lambda s: s["jobStatus"].get("parallelism") == 3 and s["lifecycleState"] == "STABLE",
        timeout=90,
    )
    assert rescaled["jobStatus"]["jobId"] == job_id
    assert rescaled["jobStatus"]["restoreGeneration"] == 0
    assert rescaled["taskManagers"] == {
        "replicas": 3,
        "ready": 3,
        "labelSelector": names.taskmanager_selector(JOB),
    }
    checkpoints = await stack.jobmanager(JOB, f"/jobs/{job_id}/checkpoints")
    restored = checkpoints["latest"]["restored"]
    assert restored is not None and restored["id"] >= 1, checkpoints["latest"]
    await stack.cluster.wait_for(  # posted right after the status patch
        "the rescale Events",
        lambda: (
            {"RescaleStarted", "RescaleRequested", "Rescaled"}
            <= set(stack.cluster.event_reasons(JOB))
        ),
    )
    tms = sorted(n for n in stack.cluster.pods() if "taskmanager" in n)
    assert tms == ["wc-taskmanager-0", "wc-taskmanager-1", "wc-taskmanager-2"]
    created_pods = [w for w in stack.api.writes if w[:2] == ("CREATE", "pods")]
    assert len(created_pods) == 4, created_pods  # one JobManager, three TaskManagers, once each

    await stack.wait_status(
        JOB, "the job to finish", lambda s: s["jobStatus"]["state"] == "FINISHED", timeout=150
    )
    rows = jobs.committed(out)
    assert jobs.problems(rows, EVENTS) == []
    # every record was counted by the subtask owning its key group at p = 2 or p = 3, and the
    # third subtask did its share after the rescale
    for key, _, subtask in rows:
        group = keygroups.assign_to_key_group(key, 128)
        owners = {keygroups.operator_index_for_key_group(128, p, group) for p in (2, 3)}
        assert subtask in owners, (key, subtask, owners)
    assert 2 in {subtask for _, _, subtask in rows}
