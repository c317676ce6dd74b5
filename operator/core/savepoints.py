"""Savepoints: triggering one and following it to its end. Pure.

Three kinds (:class:`~.observation.SavepointReason`): a manual one (``savepointTriggerNonce``)
leaves the job running; a stop-with-savepoint is the first half of a savepoint upgrade or a
suspend. :func:`trigger` records the attempt in status *before* the JobManager is asked (the
shell then adds the trigger id), and refuses to retry a failed one of the same reason sooner
than ``savepoint_retry_s``. :func:`follow` waits until it completed (also when the trigger id
was lost: the stopped job names its savepoint), failed or timed out; a completed stop tears the
pods down into a new lineage restoring it (:mod:`.teardown`). While a stop is in flight no pod
is replaced: that would restart the job being stopped.
"""

from __future__ import annotations

import dataclasses

from streamjob.jobmanager import dto
from streamjob.operator.core import actions, maintenance, model, teardown
from streamjob.operator.core.observation import (
    Recorded,
    SavepointReason,
    SavepointRecord,
    SavepointState,
)
from streamjob.operator.core.plan import BUSY_REQUEUE_S, Operation, Plan, PlanInput


def manual(inp: PlanInput, rec: Recorded, old: model.StreamJobSpec, nonce: int) -> Plan:
    jm = inp.obs.jobmanager
    if jm is None or not jm.running:
        state = jm.job_state.value if jm is not None and jm.job_state else "not reachable"
        return maintenance.maintain(
            inp,
            rec,
            old,
            message=f"savepoint (nonce {nonce}) waits for the job to run ({state})",
            requeue_s=BUSY_REQUEUE_S * 5,
        )
    return trigger(inp, rec, old, reason=SavepointReason.MANUAL, stop=False, nonce=nonce)


def trigger(
    inp: PlanInput,
    rec: Recorded,
    old: model.StreamJobSpec,
    *,
    reason: SavepointReason,
    stop: bool,
    nonce: int | None,
) -> Plan:
    last = rec.savepoint
    now = inp.obs.now
    if (
        last is not None
        and last.state is SavepointState.FAILED
        and last.reason is reason
        and (now - last.trigger_time).total_seconds() < inp.settings.savepoint_retry_s
    ):
        wait = inp.settings.savepoint_retry_s - (now - last.trigger_time).total_seconds()
        return maintenance.maintain(
            inp,
            rec,
            old,
            warning=f"the {reason.value.lower()} savepoint failed "
            f"({last.error}); trying again in {wait:.0f}s",
            requeue_s=wait,
        )
    assert rec.job_id is not None
    record = SavepointRecord(
        reason=reason,
        state=SavepointState.TRIGGERING,
        stop=stop,
        trigger_time=now,
        trigger_nonce=nonce,
    )
    action = actions.TriggerSavepoint(
        job_id=rec.job_id, target_dir=old.checkpoints.savepoints, reason=reason, stop=stop
    )
    return Plan(
        recorded=dataclasses.replace(rec, savepoint=record),
        operation=Operation.SAVEPOINTING,
        actions=(action,),
        message=f"{action.describe()}",
        requeue_s=BUSY_REQUEUE_S,
    )


def follow(inp: PlanInput, rec: Recorded, sp: SavepointRecord) -> Plan:
    old = rec.reconciled
    assert old is not None
    obs = inp.obs
    jm = obs.jobmanager
    status = jm.savepoint if jm is not None else None
    location = status.location if status is not None else None
    if status is None and jm is not None and jm.job is not None and sp.stop:
        location = jm.job.stopped_with_savepoint  # the trigger id was lost, the stop was not
    completed = location is not None and (
        status is None or status.status is dto.OperationStatus.COMPLETED
    )
    age = (obs.now - sp.trigger_time).total_seconds()
    if completed:
        done = dataclasses.replace(sp, state=SavepointState.COMPLETED, location=location)
        rec = dataclasses.replace(rec, savepoint=done)
        if sp.reason is SavepointReason.MANUAL:
            return maintenance.maintain(
                inp, _nonce_handled(rec, old, sp), old, message=f"savepoint at {location}"
            )
        return teardown.tear_down(
            inp,
            rec,
            inp.spec or old,
            generation=rec.restore_generation + 1,
            path=location,
            reason=sp.reason,
        )
    failure = None
    if status is not None and status.status is dto.OperationStatus.FAILED:
        failure = status.failure_cause or "the JobManager gave no reason"
    elif age > inp.settings.savepoint_timeout_s:
        failure = f"not completed after {age:.0f}s"
    if failure is not None:
        failed = dataclasses.replace(sp, state=SavepointState.FAILED, error=failure)
        rec = dataclasses.replace(rec, savepoint=failed)
        if sp.reason is SavepointReason.MANUAL:
            rec = _nonce_handled(rec, old, sp)
        return maintenance.maintain(
            inp, rec, old, warning=f"{sp.reason.value.lower()} savepoint failed: {failure}"
        )
    if sp.trigger_id is not None and sp.state is SavepointState.TRIGGERING:
        rec = dataclasses.replace(
            rec, savepoint=dataclasses.replace(sp, state=SavepointState.IN_PROGRESS)
        )
    message = f"waiting for the {sp.reason.value.lower()} savepoint ({age:.0f}s)"
    if sp.stop:  # the job is stopping: replacing its pods now would restart it
        return Plan(
            recorded=rec,
            operation=Operation.SAVEPOINTING,
            message=message,
            requeue_s=BUSY_REQUEUE_S,
        )
    return maintenance.maintain(
        inp,
        rec,
        old,
        operation=Operation.SAVEPOINTING,
        message=message,
        requeue_s=BUSY_REQUEUE_S,
    )


def _nonce_handled(rec: Recorded, old: model.StreamJobSpec, sp: SavepointRecord) -> Recorded:
    raw = dict(old.raw)
    raw["savepointTriggerNonce"] = sp.trigger_nonce
    return dataclasses.replace(rec, reconciled_raw=raw)
