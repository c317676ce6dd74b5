"""REST: health, cluster, jobs, cancel, rescale and the error shapes (DESIGN.md section 7).

Aspects covered, against a real local job through ``httpx.ASGITransport``:
- ``/healthz`` always answers; ``/readyz`` is 503 until the job is deployed, then 200;
- ``/overview`` and ``/taskmanagers`` describe the local mini-cluster (one TaskManager);
- ``/jobs`` and ``/jobs/{id}``: state, vertices with per-subtask record counts that add up,
  parallelism, max parallelism, restarts; a restarted job shows its restart and failure, a
  failed one FAILED with the cause;
- ``/jobs/{id}/cancel`` cancels (202, CANCELLING, then CANCELED; again: 409);
- ``/jobs/{id}/rescale`` is 409 on a local run, naming the way to rescale; a bad body is 422;
- unknown jobs and routes are 404; every error is ``{"errors": [message]}``; OpenAPI at /docs.
"""

from __future__ import annotations

import re

import pytest

from streamjob.checkpoint.restart import FixedDelayRestart, NoRestart
from streamjob.jobmanager import dto
from tests.rest.conftest import StartJob


async def test_health_and_readiness(start_job: StartJob) -> None:
    job = await start_job(begin=False)
    assert (await job.http.get("/healthz")).json() == {"status": "ok", "detail": ""}
    not_ready = await job.http.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["status"] == "not ready"
    job.task = job.gateway.start()
    await job.until(lambda: job.gateway.state is dto.JobState.RUNNING)
    ready = await job.http.get("/readyz")
    assert ready.status_code == 200 and job.job_id in ready.json()["detail"]


async def test_overview_jobs_and_job_details(start_job: StartJob) -> None:
    job = await start_job(parallelism=2)
    overview = dto.ClusterOverview.model_validate(await job.get("/overview"))
    assert (overview.taskmanagers, overview.slots_total, overview.jobs_running) == (1, 2, 1)
    assert overview.slots_available == 0 and overview.uptime_s >= 0
    jobs = dto.JobList.model_validate(await job.get("/jobs")).jobs
    assert [(j.id, j.name, j.state) for j in jobs] == [
        (job.job_id, "keyed-count", dto.JobState.RUNNING)
    ]
    assert job.job_id.startswith("job-")  # derived from the checkpoint directory
    await job.until(lambda: (job.runner.result.source_records if job.runner.result else 0) > 200)
    details = dto.JobDetails.model_validate(await job.get(f"/jobs/{job.job_id}"))
    assert details.state is dto.JobState.RUNNING
    assert (details.parallelism, details.max_parallelism, details.restarts) == (2, 128, 0)
    names = [v.name for v in details.vertices]
    assert names[0].startswith("numbers") and "Count" in names[-1]
    for vertex in details.vertices:
        assert [s.index for s in vertex.subtasks] == list(range(vertex.parallelism))
        assert vertex.records_out == sum(s.records_out for s in vertex.subtasks)
        assert {s.status for s in vertex.subtasks} == {"RUNNING"}
    assert details.vertices[0].records_out > 0
    assert details.source_records >= details.vertices[0].records_out  # read later
    managers = dto.TaskManagerList.model_validate(await job.get("/taskmanagers")).taskmanagers
    assert len(managers) == 1 and managers[0].slots_total == 2 and managers[0].tasks_running == 4


async def test_unknown_job_trigger_and_route_are_404_with_messages(start_job: StartJob) -> None:
    job = await start_job()
    for path in ("/jobs/nope", "/jobs/nope/checkpoints", f"/jobs/{job.job_id}/savepoints/xyz"):
        response = await job.http.get(path)
        assert response.status_code == 404, path
        (message,) = response.json()["errors"]
        assert "not found" in message or "no savepoint trigger" in message
    response = await job.http.post("/jobs/nope/cancel")
    assert response.status_code == 404 and job.job_id in response.json()["errors"][0]
    response = await job.http.get("/no/such/route")
    assert response.status_code == 404 and "/docs" in response.json()["errors"][0]


async def test_rescale_is_a_conflict_on_a_local_run(start_job: StartJob) -> None:
    job = await start_job()
    response = await job.http.post(f"/jobs/{job.job_id}/rescale", json={"parallelism": 3})
    assert response.status_code == 409
    assert "savepoint" in response.json()["errors"][0]
    assert "distributed runtime" in response.json()["errors"][0]
    for body in ({"parallelism": 0}, {}, {"parallelism": "many"}, {"parallelism": 2, "x": 1}):
        response = await job.http.post(f"/jobs/{job.job_id}/rescale", json=body)
        assert response.status_code == 422, body
        assert any("parallelism" in m or "x" in m for m in response.json()["errors"])
    response = await job.http.post(
        f"/jobs/{job.job_id}/rescale",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["errors"]
    response = await job.http.post("/jobs/nope/rescale", json={"parallelism": 3})
    assert response.status_code == 404


async def test_cancel_ends_the_job_cancelled(start_job: StartJob) -> None:
    job = await start_job()
    response = await job.http.post(f"/jobs/{job.job_id}/cancel")
    assert response.status_code == 202
    action = dto.JobAction.model_validate(response.json())
    assert action.state is dto.JobState.CANCELLING
    assert job.task is not None
    await job.until(job.task.done)
    details = dto.JobDetails.model_validate(await job.get(f"/jobs/{job.job_id}"))
    assert details.state is dto.JobState.CANCELED and details.end_time_ms is not None
    assert details.last_failure is None
    again = await job.http.post(f"/jobs/{job.job_id}/cancel")
    assert again.status_code == 409 and "CANCELED" in again.json()["errors"][0]
    overview = dto.ClusterOverview.model_validate(await job.get("/overview"))
    assert (overview.jobs_running, overview.jobs_cancelled) == (0, 1)


async def test_cancel_during_the_restart_delay(start_job: StartJob) -> None:
    job = await start_job(
        fail_at=300, restart=FixedDelayRestart(attempts=3, delay_s=30.0), wait_checkpoints=0
    )
    await job.until(lambda: job.gateway.state is dto.JobState.RESTARTING)
    response = await job.http.post(f"/jobs/{job.job_id}/cancel")
    assert response.status_code == 202
    assert job.task is not None
    await job.until(job.task.done, timeout=5)  # not after the 30 s delay
    assert job.gateway.state is dto.JobState.CANCELED


async def test_a_restart_shows_in_the_job_and_its_checkpoints(start_job: StartJob) -> None:
    job = await start_job(
        fail_at=600,
        after_checkpoint=True,
        restart=FixedDelayRestart(attempts=3, delay_s=0.0),
        wait_checkpoints=0,
    )
    await job.until(lambda: job.runner.result is not None and job.runner.result.restarts >= 1)
    await job.until(lambda: job.gateway.state is dto.JobState.RUNNING)
    details = dto.JobDetails.model_validate(await job.get(f"/jobs/{job.job_id}"))
    assert details.restarts == 1 and details.attempt == 1
    assert details.last_failure is not None and "boom at record" in details.last_failure
    stats = dto.CheckpointStatistics.model_validate(
        await job.get(f"/jobs/{job.job_id}/checkpoints")
    )
    restored = stats.latest.restored
    assert restored is not None and restored.id > 0 and restored.attempt == 1
    assert stats.counts.restored == 1


async def test_a_failed_job_is_failed_with_its_cause(start_job: StartJob) -> None:
    job = await start_job(fail_at=100, once=False, restart=NoRestart(), wait_checkpoints=0)
    assert job.task is not None
    await job.until(job.task.done)
    details = dto.JobDetails.model_validate(await job.get(f"/jobs/{job.job_id}"))
    assert details.state is dto.JobState.FAILED
    assert details.last_failure is not None
    assert re.search(r"boom at record 10\d", details.last_failure)  # a subtask's first >= 100
    overview = dto.ClusterOverview.model_validate(await job.get("/overview"))
    assert overview.jobs_failed == 1


async def test_openapi_lists_every_route(start_job: StartJob) -> None:
    job = await start_job(begin=False)
    assert (await job.http.get("/docs")).status_code == 200
    paths = set((await job.get("/openapi.json"))["paths"])
    assert paths >= {
        "/healthz",
        "/readyz",
        "/metrics",
        "/overview",
        "/jobs",
        "/jobs/{job_id}",
        "/jobs/{job_id}/checkpoints",
        "/jobs/{job_id}/savepoints",
        "/jobs/{job_id}/savepoints/{trigger_id}",
        "/jobs/{job_id}/rescale",
        "/jobs/{job_id}/cancel",
        "/taskmanagers",
    }


def test_dto_requests_reject_unknown_fields() -> None:
    with pytest.raises(ValueError, match="target-dir"):
        dto.SavepointTriggerRequest.model_validate({"target-dir": "/tmp/x"})
