"""``GET /metrics``: the Prometheus text exposition format (version 0.0.4), without extra deps.

:func:`collect` turns a gateway's DTOs into metric families; :func:`render` writes them as
text (pure: tests parse it back). Records in/out are counted per task, checkpoint counts,
durations and sizes per job, plus restarts and uptime. Names follow Prometheus conventions:
``streamjob_`` prefix, base units (seconds, bytes), ``_total`` for counters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from streamjob.jobmanager import dto
from streamjob.jobmanager.gateway import JobGateway

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    value: float
    labels: Labels = ()
    suffix: str = ""  # "_sum" / "_count" for summaries


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | summary
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append(Sample(value, tuple(labels.items()), suffix))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels)
            name = family.name + sample.suffix
            lines.append(
                f"{name}{{{labels}}} {_number(sample.value)}"
                if labels
                else f"{name} {_number(sample.value)}"
            )
    return "\n".join(lines) + "\n"


def _job_families(
    jobs: Sequence[dto.JobDetails], stats: dict[str, dto.CheckpointStatistics]
) -> list[Family]:
    state = Family("streamjob_job_state", "gauge", "1 for the job's current state, else 0")
    restarts = Family("streamjob_job_restarts_total", "counter", "restarts of the job")
    records_in = Family(
        "streamjob_task_records_in_total", "counter", "records received by a subtask"
    )
    records_out = Family(
        "streamjob_task_records_out_total", "counter", "records emitted by a subtask"
    )
    completed = Family(
        "streamjob_checkpoints_completed_total", "counter", "completed checkpoints and savepoints"
    )
    failed = Family("streamjob_checkpoints_failed_total", "counter", "failed checkpoints")
    in_progress = Family("streamjob_checkpoints_in_progress", "gauge", "checkpoints in progress")
    restored = Family(
        "streamjob_checkpoints_restored_total", "counter", "restores from a checkpoint"
    )
    last_id = Family("streamjob_last_checkpoint_id", "gauge", "id of the last completed checkpoint")
    last_size = Family(
        "streamjob_last_checkpoint_size_bytes", "gauge", "size of the last completed checkpoint"
    )
    last_duration = Family(
        "streamjob_last_checkpoint_duration_seconds",
        "gauge",
        "duration of the last completed checkpoint",
    )
    durations = Family(
        "streamjob_checkpoint_duration_seconds", "summary", "durations of completed checkpoints"
    )
    sizes = Family("streamjob_checkpoint_size_bytes", "summary", "sizes of completed checkpoints")
    for job in jobs:
        for value in dto.JobState:
            state.add(1 if job.state is value else 0, job_id=job.id, state=value.value)
        restarts.add(job.restarts, job_id=job.id)
        for vertex in job.vertices:
            for sub in vertex.subtasks:
                labels = {
                    "job_id": job.id,
                    "vertex": vertex.name,
                    "task": sub.name,
                    "subtask": str(sub.index),
                }
                records_in.add(sub.records_in, **labels)
                records_out.add(sub.records_out, **labels)
        cp = stats.get(job.id)
        if cp is None or not cp.enabled:
            continue
        completed.add(cp.counts.completed, job_id=job.id)
        failed.add(cp.counts.failed, job_id=job.id)
        in_progress.add(cp.counts.in_progress, job_id=job.id)
        restored.add(cp.counts.restored, job_id=job.id)
        latest = cp.latest.completed
        if latest is not None:
            last_id.add(latest.id, job_id=job.id)
            last_size.add(latest.size_bytes or 0, job_id=job.id)
            last_duration.add((latest.duration_ms or 0) / 1000, job_id=job.id)
        n = cp.counts.completed
        if cp.summary.duration_ms is not None:
            durations.add(cp.summary.duration_ms.avg * n / 1000, "_sum", job_id=job.id)
            durations.add(n, "_count", job_id=job.id)
        if cp.summary.size_bytes is not None:
            sizes.add(cp.summary.size_bytes.avg * n, "_sum", job_id=job.id)
            sizes.add(n, "_count", job_id=job.id)
    return [
        state,
        restarts,
        records_in,
        records_out,
        completed,
        failed,
        in_progress,
        restored,
        last_id,
        last_size,
        last_duration,
        durations,
        sizes,
    ]


async def collect(gateway: JobGateway) -> list[Family]:
    overview = await gateway.overview()
    uptime = Family("streamjob_uptime_seconds", "gauge", "seconds since the JobManager started")
    uptime.add(overview.uptime_s)
    slots = Family("streamjob_taskmanager_slots", "gauge", "task slots by availability")
    slots.add(overview.slots_total - overview.slots_available, status="busy")
    slots.add(overview.slots_available, status="free")
    jobs = [await gateway.job(summary.id) for summary in await gateway.jobs()]
    stats = {job.id: await gateway.checkpoints(job.id) for job in jobs}
    return [uptime, slots, *_job_families(jobs, stats)]


async def scrape(gateway: JobGateway) -> str:
    return render(await collect(gateway))
