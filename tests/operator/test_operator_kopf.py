"""The real kopf operator against kmock, with simulated pods and the fake JobManager client.

Aspects covered:
- applying a StreamJob creates the JobManager pod, its Service, the ConfigMap and the
  TaskManager pods, owned by the StreamJob and labelled by job and role; the finalizer is set;
  the status is written, valid against the CRD and unpruned, and Events record the transitions;
- an invalid StreamJob: the API server refuses what the schema and CEL rules forbid; what only
  the operator can judge (a missing Secret) gets a condition, an Event and no pods, until fixed;
- deletion: an optional final savepoint, then the children are removed and the finalizer released;
- a failed TaskManager pod is replaced and its uid reported to the JobManager;
- ``kubectl scale`` 2 -> 3: the new pod first, the rescale once it is ready;
- a savepoint trigger the JobManager refuses is FAILED at once (not left waiting for the
  savepoint timeout) and tried again after the retry delay;
- an operator restart keeps the job's lineage and touches no pod;
- a second operator replica running at the same time does no harm.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob.operator.clients import jobmanager, kube
from streamjob.operator.clients.testing import TestingJobManagerClient
from streamjob.operator.core import names
from tests.operator import schema
from tests.operator.harness import Cluster, RunningOperator
from tests.operator.podrunner import PodRunner
from tests.operator.simulation import spec_dict

pytestmark = pytest.mark.timeout(60)

JOB = "wc"
JM = names.jobmanager_pod(JOB)


async def stable(cluster: Cluster, name: str = JOB) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status = await cluster.status(name)
        return status if status.get("lifecycleState") == "STABLE" else None

    found: dict[str, Any] = await cluster.wait_for(f"{name} STABLE", check)
    return found


async def test_apply_creates_owned_children_and_a_valid_status(
    cluster: Cluster, pods: PodRunner, operator: RunningOperator
) -> None:
    created = await cluster.apply(JOB, spec_dict())
    uid = created["metadata"]["uid"]
    status = await stable(cluster)
    children = cluster.pods()
    assert sorted(children) == [JM, "wc-taskmanager-0", "wc-taskmanager-1"]
    for pod in children.values():
        (owner,) = pod["metadata"]["ownerReferences"]
        assert owner["uid"] == uid and owner["kind"] == "StreamJob" and owner["controller"]
        assert pod["metadata"]["labels"]["streamjob.io/job"] == JOB
    assert children[JM]["metadata"]["labels"]["streamjob.io/role"] == "jobmanager"
    assert cluster.api.live("v1/services", "default")["wc-jobmanager"]["spec"]["selector"] == {
        "streamjob.io/job": JOB,
        "streamjob.io/role": "jobmanager",
    }
    assert "job.json" in cluster.api.live("v1/configmaps", "default")["wc-config"]["data"]
    body = await cluster.get(JOB)
    assert names.FINALIZER in body["metadata"]["finalizers"]
    assert body["metadata"]["generation"] == 1
    stored, errors = schema.admit_status(status)
    assert errors == [] and stored == status
    assert status["jobStatus"]["jobId"] == names.job_id(uid, 0)
    assert status["observedGeneration"] == 1
    assert status["taskManagers"]["ready"] == 2
    assert "kopf" not in status  # kopf's bookkeeping is in annotations
    assert {"Deployed", "Stable"} <= set(cluster.event_reasons(JOB))


async def test_the_api_server_refuses_what_the_schema_forbids(cluster: Cluster) -> None:
    with pytest.raises(kube.KubeError) as refused:
        await cluster.apply(JOB, spec_dict(parallelism=9, maxParallelism=8))
    assert refused.value.status == 422
    assert "job.parallelism must not exceed job.maxParallelism" in str(refused.value)


async def test_an_invalid_streamjob_gets_a_condition_an_event_and_no_pods(
    cluster: Cluster, pods: PodRunner, operator: RunningOperator
) -> None:
    spec = spec_dict()
    spec["checkpoints"]["s3"] = {"credentialsSecret": "s3-creds"}
    await cluster.apply(JOB, spec)

    async def invalid() -> dict[str, Any] | None:
        conditions = (await cluster.status(JOB)).get("conditions") or []
        return next(
            (c for c in conditions if c["type"] == "Valid" and c["status"] == "False"), None
        )

    condition = await cluster.wait_for("Valid=False", invalid)
    assert "spec.checkpoints.s3.credentialsSecret" in condition["message"]
    assert "kubectl create secret generic s3-creds" in condition["message"]
    await cluster.wait_for(
        "the InvalidSpec event", lambda: "InvalidSpec" in cluster.event_reasons(JOB)
    )
    assert cluster.pods() == {}
    await cluster.create_secret(
        "s3-creds", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    )
    await stable(cluster)
    assert JM in cluster.pods()
    env = {e["name"]: e for e in cluster.pods()[JM]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"


async def test_deletion_takes_a_final_savepoint_and_cleans_up(
    cluster: Cluster,
    pods: PodRunner,
    operator: RunningOperator,
    fake_jobmanager: TestingJobManagerClient,
) -> None:
    await cluster.apply(JOB, spec_dict(savepointOnDelete=True))
    await stable(cluster)
    await cluster.delete(JOB)

    async def gone() -> bool:
        return await cluster.client.get_streamjob("default", JOB) is None

    await cluster.wait_for("the StreamJob to go", gone)
    assert cluster.pods() == {}
    assert cluster.api.live("v1/services", "default") == {}
    assert cluster.api.live("v1/configmaps", "default") == {}
    (trigger,) = fake_jobmanager.calls_named("trigger_savepoint")
    assert trigger[-1] == "True"  # stop-with-savepoint
    reasons = cluster.event_reasons(JOB)
    assert reasons.count("FinalSavepoint") == 1 and reasons.count("Deleted") == 1, reasons
    final = next(e for e in cluster.events(JOB) if e["reason"] == "FinalSavepoint")
    assert "s3://checkpoints/wordcount/savepoints/savepoint-" in final["message"]


async def test_a_failed_taskmanager_is_replaced_and_reported(
    cluster: Cluster,
    pods: PodRunner,
    operator: RunningOperator,
    fake_jobmanager: TestingJobManagerClient,
) -> None:
    await cluster.apply(JOB, spec_dict())
    await stable(cluster)
    old = cluster.pods()["wc-taskmanager-1"]["metadata"]["uid"]
    await pods.fail("wc-taskmanager-1")

    def replaced() -> bool:
        pod = cluster.pods().get("wc-taskmanager-1")
        return pod is not None and pod["metadata"]["uid"] != old

    await cluster.wait_for("a new wc-taskmanager-1", replaced, timeout=5)
    assert fake_jobmanager.failed_reports == [old]
    await stable(cluster)
    assert "TaskManagerFailed" in cluster.event_reasons(JOB)


async def test_kubectl_scale_up_creates_the_pod_before_the_rescale(
    cluster: Cluster,
    pods: PodRunner,
    operator: RunningOperator,
    fake_jobmanager: TestingJobManagerClient,
) -> None:
    await cluster.apply(JOB, spec_dict())
    await stable(cluster)
    seen_at_rescale: list[dict[str, Any]] = []
    rescale = fake_jobmanager.rescale

    async def watching(job_id: str, parallelism: int) -> Any:
        seen_at_rescale.append(dict(cluster.pods()))
        return await rescale(job_id, parallelism)

    fake_jobmanager.rescale = watching  # type: ignore[method-assign]
    await cluster.scale(JOB, 3)
    assert (await cluster.get(JOB))["spec"]["job"]["parallelism"] == 3

    async def rescaled() -> bool:
        status = await cluster.status(JOB)
        return status["jobStatus"].get("parallelism") == 3 and status["lifecycleState"] == "STABLE"

    await cluster.wait_for("parallelism 3", rescaled)
    (at_rescale,) = seen_at_rescale
    new_pod = at_rescale["wc-taskmanager-2"]
    assert new_pod["status"]["phase"] == "Running"
    assert any(
        c["type"] == "Ready" and c["status"] == "True" for c in new_pod["status"]["conditions"]
    )
    status = await cluster.status(JOB)
    assert status["taskManagers"]["replicas"] == 3
    assert {"RescaleStarted", "RescaleRequested", "Rescaled"} <= set(cluster.event_reasons(JOB))


async def test_a_refused_savepoint_trigger_fails_at_once_and_is_retried(
    cluster: Cluster,
    pods: PodRunner,
    operator: RunningOperator,
    fake_jobmanager: TestingJobManagerClient,
) -> None:
    await cluster.apply(JOB, spec_dict(upgradeMode="savepoint"))
    await stable(cluster)
    trigger = fake_jobmanager.trigger_savepoint
    refused: list[str] = []

    async def refusing_once(job_id: str, *, target_dir: str, stop: bool) -> str:
        if not refused:
            refused.append(job_id)
            raise jobmanager.JobManagerError("the JobManager is busy", status=503)
        return await trigger(job_id, target_dir=target_dir, stop=stop)

    fake_jobmanager.trigger_savepoint = refusing_once  # type: ignore[method-assign]
    await cluster.patch_spec(JOB, {"image": "registry.local/streamjob:2"})

    async def failed() -> dict[str, Any] | None:
        found = (await cluster.status(JOB)).get("savepoint") or {}
        return found if found.get("state") == "FAILED" else None

    record = await cluster.wait_for("the refused savepoint FAILED", failed)
    assert "the JobManager is busy" in record["error"]

    async def upgraded() -> dict[str, Any] | None:
        status = await cluster.status(JOB)
        generation = status["jobStatus"]["restoreGeneration"]
        return status if generation == 1 and status["lifecycleState"] == "STABLE" else None

    status = await cluster.wait_for("the upgrade after the retry", upgraded)
    assert status["savepoint"]["state"] == "COMPLETED"
    assert status["upgradeSavepointPath"] == status["savepoint"]["location"]
    # the fake records only calls it answered: the refused one is not among them
    assert len(fake_jobmanager.calls_named("trigger_savepoint")) == 1


async def test_an_operator_restart_keeps_the_lineage(
    cluster: Cluster,
    pods: PodRunner,
    operator: RunningOperator,
    fake_jobmanager: TestingJobManagerClient,
) -> None:
    await cluster.apply(JOB, spec_dict(upgradeMode="stateless"))
    await stable(cluster)
    await cluster.patch_spec(JOB, {"restartNonce": 1})

    async def upgraded() -> dict[str, Any] | None:
        status = await cluster.status(JOB)
        generation = status.get("jobStatus", {}).get("restoreGeneration")
        return status if generation == 1 and status["lifecycleState"] == "STABLE" else None

    before = await cluster.wait_for("restore generation 1", upgraded)
    uids = {n: p["metadata"]["uid"] for n, p in cluster.pods().items()}
    calls = len(fake_jobmanager.calls)
    await operator.restart()
    await cluster.wait_for(
        "the new operator to look", lambda: len(fake_jobmanager.calls) > calls + 4
    )
    after = await stable(cluster)
    assert after["jobStatus"]["jobId"] == before["jobStatus"]["jobId"]
    assert after["jobStatus"]["restoreGeneration"] == 1
    assert {n: p["metadata"]["uid"] for n, p in cluster.pods().items()} == uids


async def test_a_second_operator_replica_does_no_harm(
    cluster: Cluster,
    pods: PodRunner,
    operator: RunningOperator,
    fake_jobmanager: TestingJobManagerClient,
) -> None:
    second = RunningOperator(operator.config, fake_jobmanager)
    await second.start()
    try:
        await cluster.apply(JOB, spec_dict())
        await stable(cluster)
        await cluster.patch_spec(JOB, {"job": {"parallelism": 3}})

        async def rescaled() -> bool:
            status = await cluster.status(JOB)
            return (
                status["jobStatus"].get("parallelism") == 3 and status["lifecycleState"] == "STABLE"
            )

        await cluster.wait_for("parallelism 3", rescaled)
    finally:
        await second.stop()
    assert sorted(cluster.pods()) == [
        JM,
        "wc-taskmanager-0",
        "wc-taskmanager-1",
        "wc-taskmanager-2",
    ]
    deleted = [w for w in cluster.api.writes if w[0] == "DELETE"]
    assert deleted == []  # nothing was created twice and then cleaned up
    assert [c[-1] for c in fake_jobmanager.calls_named("rescale")] == ["3"]
