"""REST: checkpoint statistics and savepoints by trigger id (DESIGN.md sections 6 and 7).

Aspects covered, against a real checkpointing job:
- ``/jobs/{id}/checkpoints``: counts, the latest completed checkpoint (its directory really
  holds ``_metadata``), sizes and durations summarised, history newest first; a checkpoint held
  mid-upload shows as IN_PROGRESS with its acknowledgements;
- ``POST /jobs/{id}/savepoints`` answers 202 with a trigger id; polling gives IN_PROGRESS
  (held deterministically by blocking uploads), then COMPLETED with a location that holds a
  savepoint's ``_metadata``; a second trigger while one runs is 409;
- stop-with-savepoint ends the job FINISHED and names the savepoint;
- errors: no target and no default (400), unknown fields or bad JSON (422), a job without
  checkpointing or already ended (409), an unknown trigger (404);
- a trigger that cannot complete because the job ended reports FAILED with the reason.
"""

from __future__ import annotations

from pathlib import Path

from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.jobmanager import dto
from tests.rest.conftest import RunningJob, StartJob


async def _stats(job: RunningJob) -> dto.CheckpointStatistics:
    return dto.CheckpointStatistics.model_validate(await job.get(f"/jobs/{job.job_id}/checkpoints"))


async def _trigger(job: RunningJob, **body: object) -> str:
    response = await job.http.post(f"/jobs/{job.job_id}/savepoints", json=body)
    assert response.status_code == 202, response.text
    return dto.SavepointTriggerResponse.model_validate(response.json()).trigger_id


async def _status(job: RunningJob, trigger: str) -> dto.SavepointStatus:
    return dto.SavepointStatus.model_validate(
        await job.get(f"/jobs/{job.job_id}/savepoints/{trigger}")
    )


def _local(path: str) -> Path:
    return Path(path.removeprefix("file://"))


async def test_checkpoint_statistics(start_job: StartJob) -> None:
    job = await start_job(wait_checkpoints=3)
    stats = await _stats(job)
    assert stats.enabled and stats.interval_ms == 100 and stats.mode == "exactly_once"
    assert stats.counts.completed >= 3 and stats.counts.failed == 0
    assert stats.counts.total == stats.counts.completed + stats.counts.in_progress
    latest = stats.latest.completed
    assert latest is not None and latest.status is dto.OperationStatus.COMPLETED
    assert latest.path is not None and (_local(latest.path) / "_metadata").is_file()
    assert latest.size_bytes is not None and latest.size_bytes > 0
    completed = [c for c in stats.history if c.status is dto.OperationStatus.COMPLETED]
    ids = [c.id for c in completed]
    assert ids == sorted(ids, reverse=True) and ids[0] == latest.id
    assert stats.summary.size_bytes is not None and stats.summary.size_bytes.max > 0
    assert stats.summary.duration_ms is not None
    assert stats.summary.duration_ms.min <= stats.summary.duration_ms.avg
    assert stats.latest.savepoint is None and stats.latest.restored is None


async def test_a_checkpoint_held_mid_upload_is_in_progress(start_job: StartJob) -> None:
    job = await start_job()
    await job.hold_uploads()
    stats = await _stats(job)
    assert stats.counts.in_progress == 1
    current = stats.history[0]
    assert current.status is dto.OperationStatus.IN_PROGRESS and current.expected == 4
    assert current.acknowledged is not None and current.acknowledged < 4
    job.release.set()


async def test_savepoint_trigger_poll_and_complete(start_job: StartJob, tmp_path: Path) -> None:
    job = await start_job()
    job.hold.set()  # the savepoint's uploads block until released
    trigger = await _trigger(job, target_dir=str(tmp_path / "sp"))
    assert (await _status(job, trigger)).status is dto.OperationStatus.IN_PROGRESS
    busy = await job.http.post(f"/jobs/{job.job_id}/savepoints", json={"target_dir": "/x"})
    assert busy.status_code == 409 and trigger in busy.json()["errors"][0]
    job.release.set()
    await job.until(lambda: job.gateway.has_unobserved_savepoints() and _done(job))
    status = await _status(job, trigger)
    assert status.status is dto.OperationStatus.COMPLETED and status.failure_cause is None
    assert status.location is not None
    location = _local(status.location)
    assert location.parent == tmp_path / "sp"
    assert location.name.startswith(f"savepoint-{job.job_id}-")
    meta = CheckpointMetadata.from_bytes(
        (location / "_metadata").read_bytes(), location=str(location)
    )
    assert meta.kind == "savepoint" and meta.job_id == job.job_id
    assert not job.gateway.has_unobserved_savepoints()
    stats = await _stats(job)
    assert stats.latest.savepoint is not None and stats.latest.savepoint.id == meta.checkpoint_id
    assert job.gateway.state is dto.JobState.RUNNING  # an intermediate savepoint


def _done(job: RunningJob) -> bool:
    return all(t.task.done() for t in job.gateway._triggers.values())


async def test_stop_with_savepoint_finishes_the_job(start_job: StartJob, tmp_path: Path) -> None:
    job = await start_job(savepoint_dir=str(tmp_path / "default-sp"))
    trigger = await _trigger(job, stop=True)  # the default directory
    assert job.task is not None
    await job.until(job.task.done)
    status = await _status(job, trigger)
    assert status.status is dto.OperationStatus.COMPLETED and status.location is not None
    assert _local(status.location).parent == tmp_path / "default-sp"
    details = dto.JobDetails.model_validate(await job.get(f"/jobs/{job.job_id}"))
    assert details.state is dto.JobState.FINISHED
    assert details.stopped_with_savepoint == status.location
    ended = await job.http.post(f"/jobs/{job.job_id}/savepoints", json={"target_dir": "/x"})
    assert ended.status_code == 409 and "FINISHED" in ended.json()["errors"][0]


async def test_savepoint_request_errors(start_job: StartJob) -> None:
    job = await start_job()
    path = f"/jobs/{job.job_id}/savepoints"
    no_target = await job.http.post(path, json={})
    assert no_target.status_code == 400 and "target_dir" in no_target.json()["errors"][0]
    no_body = await job.http.post(path)
    assert no_body.status_code == 400
    typo = await job.http.post(path, json={"target-dir": "/tmp/x"})
    assert typo.status_code == 422 and "target-dir" in typo.json()["errors"][0]
    wrong_type = await job.http.post(path, json={"target_dir": "/tmp/x", "stop": "soon"})
    assert wrong_type.status_code == 422 and "stop" in wrong_type.json()["errors"][0]
    bad_json = await job.http.post(path, content=b"{", headers={"content-type": "application/json"})
    assert bad_json.status_code == 422
    unknown = await job.http.post("/jobs/nope/savepoints", json={"target_dir": "/tmp/x"})
    assert unknown.status_code == 404


async def test_savepoints_need_checkpointing(start_job: StartJob, tmp_path: Path) -> None:
    job = await start_job(checkpoint=False)
    assert len(job.job_id) == 32  # no checkpoint directory: a generated id
    response = await job.http.post(
        f"/jobs/{job.job_id}/savepoints", json={"target_dir": str(tmp_path)}
    )
    assert response.status_code == 409 and "--checkpoint-dir" in response.json()["errors"][0]
    stats = await _stats(job)
    assert not stats.enabled and stats.counts.total == 0 and stats.history == []


async def test_a_savepoint_the_job_outlived_fails(start_job: StartJob, tmp_path: Path) -> None:
    job = await start_job()
    await job.hold_uploads()  # a regular checkpoint is stuck mid-upload: the savepoint waits
    trigger = await _trigger(job, target_dir=str(tmp_path / "sp"))
    job.gateway.request_cancel()
    job.release.set()
    assert job.task is not None
    await job.until(job.task.done)
    await job.until(lambda: _done(job))
    status = await _status(job, trigger)
    assert status.status is dto.OperationStatus.FAILED and status.location is None
    assert status.failure_cause is not None and "CANCELED" in status.failure_cause
    assert not (tmp_path / "sp").exists() or not any((tmp_path / "sp").rglob("_metadata"))
