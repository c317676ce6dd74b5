"""Rescaling: a parallelism change (spec or ``kubectl scale``), coalesced, with a cooldown. Pure.

Scale up: :func:`start` records a :class:`~.observation.RescaleRecord` in phase ``PODS`` and
creates the new TaskManager pods; :func:`follow` asks the JobManager to rescale once all of them
are ready (phase ``REQUESTED``). Scale down: the JobManager is asked first; the highest ordinals
are deleted by maintenance only once the job runs at the new parallelism. A new target arriving
before the JobManager was asked is coalesced into the scale up in flight (or withdraws it); a
request the JobManager did not act on is repeated after ``rescale_retry_s``; the next rescale
waits ``rescale_cooldown_s`` after the last one finished.
"""

from __future__ import annotations

import dataclasses

from streamjob.jobmanager import dto
from streamjob.operator.core import actions, maintenance, model
from streamjob.operator.core.observation import Recorded, RescalePhase, RescaleRecord
from streamjob.operator.core.plan import BUSY_REQUEUE_S, Operation, Plan, PlanInput


def start(
    inp: PlanInput, rec: Recorded, old: model.StreamJobSpec, new: model.StreamJobSpec
) -> Plan:
    now = inp.obs.now
    source, target = old.job.parallelism, new.job.parallelism
    if rec.last_rescale_time is not None:
        waited = (now - rec.last_rescale_time).total_seconds()
        if waited < inp.settings.rescale_cooldown_s:
            left = inp.settings.rescale_cooldown_s - waited
            return maintenance.maintain(
                inp,
                rec,
                old,
                message=f"rescale to {target} waits {left:.0f}s (cooldown)",
                requeue_s=left,
            )
    jm = inp.obs.jobmanager
    if jm is None or not jm.running:
        state = jm.job_state.value if jm is not None and jm.job_state else "not reachable"
        return maintenance.maintain(
            inp,
            rec,
            old,
            message=f"rescale to {target} waits for the job to run ({state})",
            requeue_s=BUSY_REQUEUE_S,
        )
    if target > source:
        record = RescaleRecord(
            source=source, target=target, phase=RescalePhase.PODS, start_time=now
        )
        return maintenance.maintain(
            inp,
            dataclasses.replace(rec, rescale=record),
            old,
            taskmanagers=target,
            operation=Operation.RESCALING,
            message=f"scaling up to {target}: starting pods",
        )
    assert rec.job_id is not None
    record = RescaleRecord(
        source=source, target=target, phase=RescalePhase.REQUESTED, start_time=now
    )
    return Plan(
        recorded=dataclasses.replace(rec, rescale=record),
        operation=Operation.RESCALING,
        actions=(actions.Rescale(job_id=rec.job_id, parallelism=target, scale_down=True),),
        message=f"scaling down to {target}: rescaling the job",
        requeue_s=BUSY_REQUEUE_S,
    )


def follow(inp: PlanInput, rec: Recorded, rs: RescaleRecord) -> Plan:
    old = rec.reconciled
    assert old is not None and rec.job_id is not None
    if rs.phase is RescalePhase.PODS:
        return _follow_pods(inp, rec, old, rs)
    obs = inp.obs
    jm = obs.jobmanager
    job = jm.job if jm is not None else None
    if job is not None and job.state is dto.JobState.RUNNING and job.parallelism == rs.target:
        raw = {**old.raw, "job": {**old.raw.get("job", {}), "parallelism": rs.target}}
        done = dataclasses.replace(rec, reconciled_raw=raw, rescale=None, last_rescale_time=obs.now)
        return maintenance.maintain(
            inp, done, model.parse_spec(raw), message=f"rescaled to {rs.target}"
        )
    waited = (obs.now - rs.start_time).total_seconds()
    stuck = job is not None and job.state is dto.JobState.RUNNING and job.parallelism == rs.source
    if stuck and waited > inp.settings.rescale_retry_s:
        again = dataclasses.replace(rs, start_time=obs.now)
        return Plan(
            recorded=dataclasses.replace(rec, rescale=again),
            operation=Operation.RESCALING,
            actions=(
                actions.Rescale(
                    job_id=rec.job_id, parallelism=rs.target, scale_down=rs.target < rs.source
                ),
            ),
            message=f"asking again to rescale to {rs.target} (no change after {waited:.0f}s)",
            requeue_s=BUSY_REQUEUE_S,
        )
    return maintenance.maintain(
        inp,
        rec,
        old,
        taskmanagers=max(rs.source, rs.target),
        operation=Operation.RESCALING,
        message=f"waiting for the job to run at parallelism {rs.target}",
        requeue_s=BUSY_REQUEUE_S,
    )


def _follow_pods(
    inp: PlanInput, rec: Recorded, old: model.StreamJobSpec, rs: RescaleRecord
) -> Plan:
    """Scale up, phase PODS: the new TaskManagers start; the JobManager is asked once all are
    ready."""
    assert rec.job_id is not None
    obs = inp.obs
    jm = obs.jobmanager
    want = _wanted_parallelism(inp, old, rs)
    if want <= rs.source:  # withdrawn before the JobManager was asked
        return maintenance.maintain(
            inp,
            dataclasses.replace(rec, rescale=None),
            old,
            message=f"scale up to {rs.target} withdrawn",
        )
    rs = dataclasses.replace(rs, target=want)
    healthy = {p.ordinal: p for p in obs.taskmanagers if p.healthy}
    ready = sum(1 for i in range(rs.target) if i in healthy and healthy[i].ready)
    if ready == rs.target and jm is not None and jm.running:
        asked = dataclasses.replace(rs, phase=RescalePhase.REQUESTED, start_time=obs.now)
        return Plan(
            recorded=dataclasses.replace(rec, rescale=asked),
            operation=Operation.RESCALING,
            actions=(actions.Rescale(job_id=rec.job_id, parallelism=rs.target, scale_down=False),),
            message=f"scaling up to {rs.target}: rescaling the job",
            requeue_s=BUSY_REQUEUE_S,
        )
    return maintenance.maintain(
        inp,
        dataclasses.replace(rec, rescale=rs),
        old,
        taskmanagers=rs.target,
        operation=Operation.RESCALING,
        message=f"scaling up to {rs.target}: {ready}/{rs.target} TaskManagers ready",
        requeue_s=BUSY_REQUEUE_S,
    )


def _wanted_parallelism(inp: PlanInput, old: model.StreamJobSpec, rs: RescaleRecord) -> int:
    """The newest target for a scale up not yet requested (coalescing), else the recorded one."""
    spec = inp.spec
    if spec is None or spec.job.state is not model.JobState.RUNNING:
        return rs.target
    if model.deploy_key(spec) != model.deploy_key(old):
        return rs.target
    return spec.job.parallelism
