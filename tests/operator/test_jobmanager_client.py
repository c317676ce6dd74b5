"""The JobManager client: the routes and bodies of DESIGN.md section 7, and errors for people.

Aspects covered: every call of :class:`JobManagerService` hits its route with its body and parses
the answer into the REST DTOs; an HTTP error keeps its status (404 means "no such job"); an
unreachable JobManager is a :class:`JobManagerError` naming the URL; the connector picks the
Service or the pod IP; the testing fake records calls and plays a job.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from streamjob.jobmanager import dto
from streamjob.operator.clients import jobmanager
from streamjob.operator.clients.testing import TestingJobManagerClient

JOB = "0123456789abcdef0123456789abcdef"


def details(**fields: Any) -> dict[str, Any]:
    return {
        "id": JOB,
        "name": "wc",
        "state": "RUNNING",
        "start_time_ms": 1,
        "end_time_ms": None,
        "duration_ms": 5,
        "parallelism": 2,
        "max_parallelism": 128,
        "restarts": 0,
        "attempt": 0,
        "source_records": 10,
        "last_failure": None,
        "stopped_with_savepoint": None,
        "vertices": [],
        **fields,
    }


def client(routes: dict[tuple[str, str], Any], seen: list[tuple[str, str, Any]]) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        answer = routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"errors": [f"no job at {request.url.path}"]})
        return httpx.Response(200, json=answer)

    return jobmanager.HttpJobManagerClient("http://jm:8081", transport=httpx.MockTransport(handle))


async def test_routes_and_bodies() -> None:
    seen: list[tuple[str, str, Any]] = []
    action = {"job_id": JOB, "state": "RUNNING", "message": "ok"}
    jm = client(
        {
            ("GET", f"/jobs/{JOB}"): details(),
            ("POST", f"/jobs/{JOB}/savepoints"): {"trigger_id": "t1"},
            ("GET", f"/jobs/{JOB}/savepoints/t1"): {
                "trigger_id": "t1",
                "status": "COMPLETED",
                "location": "s3://b1/sp",
            },
            ("POST", f"/jobs/{JOB}/rescale"): action,
            ("POST", f"/jobs/{JOB}/cancel"): action,
            ("POST", "/taskmanagers/pod-uid-1/failed"): {},
        },
        seen,
    )
    assert (await jm.job(JOB)).parallelism == 2
    assert await jm.trigger_savepoint(JOB, target_dir="s3://b1/sp", stop=True) == "t1"
    status = await jm.savepoint_status(JOB, "t1")
    assert status.status is dto.OperationStatus.COMPLETED and status.location == "s3://b1/sp"
    assert (await jm.rescale(JOB, 3)).state is dto.JobState.RUNNING
    await jm.cancel(JOB)
    await jm.report_failed_taskmanager("pod-uid-1")
    await jm.aclose()
    assert seen == [
        ("GET", f"/jobs/{JOB}", None),
        ("POST", f"/jobs/{JOB}/savepoints", {"target_dir": "s3://b1/sp", "stop": True}),
        ("GET", f"/jobs/{JOB}/savepoints/t1", None),
        ("POST", f"/jobs/{JOB}/rescale", {"parallelism": 3}),
        ("POST", f"/jobs/{JOB}/cancel", None),
        ("POST", "/taskmanagers/pod-uid-1/failed", None),
    ]


async def test_errors_keep_the_status_and_name_the_url() -> None:
    jm = client({}, [])
    with pytest.raises(jobmanager.JobManagerError) as missing:
        await jm.job(JOB)
    assert missing.value.not_found and "http://jm:8081/jobs/" in str(missing.value)
    await jm.aclose()
    unreachable = jobmanager.HttpJobManagerClient("http://127.0.0.1:9", timeout_s=1)
    with pytest.raises(jobmanager.JobManagerError, match="cannot reach the JobManager"):
        await unreachable.jobs()
    await unreachable.aclose()


def test_connector_uses_the_service_or_the_pod_ip() -> None:
    target = jobmanager.JobManagerTarget(name="wc", namespace="jobs", pod_ip="10.1.2.3")
    by_service = jobmanager.http_connector()(target)
    by_ip = jobmanager.http_connector(address="pod-ip")(target)
    assert isinstance(by_service, jobmanager.HttpJobManagerClient)
    assert isinstance(by_ip, jobmanager.HttpJobManagerClient)
    assert by_service.url == "http://wc-jobmanager.jobs.svc:8081"
    assert by_ip.url == "http://10.1.2.3:8081"
    no_ip = jobmanager.JobManagerTarget(name="wc", namespace="jobs")
    with pytest.raises(jobmanager.JobManagerError, match="no IP yet"):
        jobmanager.http_connector(address="pod-ip")(no_ip)


async def test_the_fake_plays_a_job_and_records_calls() -> None:
    fake = TestingJobManagerClient()
    with pytest.raises(jobmanager.JobManagerError) as missing:
        await fake.job(JOB)
    assert missing.value.not_found
    fake.run_job(JOB, parallelism=2)
    trigger = await fake.trigger_savepoint(JOB, target_dir="s3://b1/sp", stop=True)
    assert (await fake.savepoint_status(JOB, trigger)).location == f"s3://b1/sp/savepoint-{JOB}-1"
    assert (await fake.job(JOB)).state is dto.JobState.FINISHED
    await fake.report_failed_taskmanager("u1")
    assert fake.failed_reports == ["u1"]
    assert [c[0] for c in fake.calls] == [
        "job",
        "trigger_savepoint",
        "savepoint_status",
        "job",
        "report_failed_taskmanager",
    ]
