"""``GET /metrics``: valid Prometheus text whose numbers agree with the REST views.

Aspects covered:
- every line is a comment (``# HELP``/``# TYPE``) or a sample ``name{labels} value``; each
  family's TYPE precedes its samples; the content type is Prometheus' text format;
- per-task records in/out equal the job's subtask counts (counted at about the same time);
  checkpoint counters, the last checkpoint's id and size, restarts and uptime are present;
- label values are escaped (backslash, quote, newline), numbers render without noise.
"""

from __future__ import annotations

import re

from streamjob.jobmanager import dto, metrics
from tests.rest.conftest import StartJob

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+|NaN|[+-]Inf)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)]; asserts the format on the way."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "summary"}
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a Prometheus sample: {line!r}"
        name, _, labels, value = match.groups()
        family = re.sub(r"_(sum|count)$", "", name) if name not in typed else name
        assert family in typed, f"{name} has no TYPE line before it"
        samples.setdefault(name, []).append((dict(_LABEL.findall(labels or "")), float(value)))
    return samples


async def test_metrics_agree_with_the_job(start_job: StartJob) -> None:
    job = await start_job(wait_checkpoints=2)
    await job.hold_uploads()  # freeze checkpoint numbers between the reads
    response = await job.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    details = dto.JobDetails.model_validate(await job.get(f"/jobs/{job.job_id}"))
    stats = dto.CheckpointStatistics.model_validate(
        await job.get(f"/jobs/{job.job_id}/checkpoints")
    )
    job.release.set()
    by_task = {
        labels["task"]: value for labels, value in samples["streamjob_task_records_out_total"]
    }
    assert set(by_task) == {s.name for v in details.vertices for s in v.subtasks}
    source_out = sum(v for k, v in by_task.items() if k.startswith("numbers"))
    assert 0 < source_out <= details.vertices[0].records_out  # read just before
    assert {labels["job_id"] for labels, _ in samples["streamjob_task_records_in_total"]} == {
        job.job_id
    }
    ((labels, completed),) = samples["streamjob_checkpoints_completed_total"]
    assert labels == {"job_id": job.job_id} and completed == stats.counts.completed >= 2
    assert samples["streamjob_checkpoints_in_progress"][0][1] == 1
    assert samples["streamjob_checkpoints_failed_total"][0][1] == 0
    assert samples["streamjob_last_checkpoint_id"][0][1] == stats.latest.completed.id  # type: ignore[union-attr]
    assert samples["streamjob_last_checkpoint_size_bytes"][0][1] > 0
    assert samples["streamjob_checkpoint_duration_seconds_count"][0][1] == completed
    assert samples["streamjob_checkpoint_size_bytes_sum"][0][1] > 0
    assert samples["streamjob_job_restarts_total"][0][1] == 0
    states = {labels["state"]: v for labels, v in samples["streamjob_job_state"]}
    assert states["RUNNING"] == 1 and sum(states.values()) == 1
    assert samples["streamjob_uptime_seconds"][0][1] > 0


def test_render_escapes_labels_and_formats_numbers() -> None:
    family = metrics.Family("x_total", "counter", "a help with \\ backslash")
    family.add(3, task='say "hi"\\n', other="line\nbreak")
    family.add(0.25, task="plain")
    gauge = metrics.Family("y", "gauge", "unlabelled")
    gauge.add(float("nan"))
    text = metrics.render([family, gauge])
    assert 'x_total{task="say \\"hi\\"\\\\n",other="line\\nbreak"} 3' in text
    assert 'x_total{task="plain"} 0.25' in text
    assert "y NaN" in text and "# HELP x_total a help with \\\\ backslash" in text
    assert parse(text)["x_total"][1] == ({"task": "plain"}, 0.25)
