"""The StreamJob's status, computed purely: one merge patch per cycle, and its transition Events.

:func:`recorded_from_status` reads the operator's bookkeeping back (so a restarted operator keeps
the job's lineage), :func:`build_status` computes the whole new status from the plan and the
observation, :func:`merge_patch` turns (old, new) into the one patch the shell applies, and
:func:`transition_events` names every transition between two statuses as an Event. Field names
and enums follow ``crds/streamjob.yaml`` (the tests validate the output against it, with pruning).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from typing import Any

from streamjob.jobmanager import dto
from streamjob.operator.core import model, names, observation, plan, validate
from streamjob.operator.core.observation import (
    Recorded,
    RescalePhase,
    RescaleRecord,
    SavepointReason,
    SavepointRecord,
    SavepointState,
)

NORMAL = "Normal"
WARNING = "Warning"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    type: str
    reason: str
    message: str


# -- time ----------------------------------------------------------------------------------------
def iso(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _from_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    return iso(datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC))


# -- the bookkeeping, read back ------------------------------------------------------------------
def recorded_from_status(status: Mapping[str, Any] | None) -> Recorded:
    status = status or {}
    job = status.get("jobStatus") or {}
    rec = status.get("reconciliation") or {}
    raw_spec = rec.get("lastReconciledSpec")
    try:
        reconciled = json.loads(raw_spec) if raw_spec else None
    except ValueError:
        reconciled = None
    return Recorded(
        reconciled_raw=reconciled if isinstance(reconciled, dict) else None,
        stable_json=rec.get("lastStableSpec"),
        restore_generation=int(job.get("restoreGeneration") or 0),
        job_id=job.get("jobId"),
        max_parallelism=job.get("maxParallelism"),
        upgrade_savepoint_path=status.get("upgradeSavepointPath"),
        savepoint=_savepoint_record(status.get("savepoint")),
        rescale=_rescale_record(rec.get("rescale")),
        last_rescale_time=parse_time(rec.get("lastRescaleTime")),
    )


def _savepoint_record(raw: Mapping[str, Any] | None) -> SavepointRecord | None:
    if not raw or not raw.get("reason") or not raw.get("state"):
        return None
    when = parse_time(raw.get("triggerTime")) or datetime.datetime.fromtimestamp(0, datetime.UTC)
    return SavepointRecord(
        reason=SavepointReason(raw["reason"]),
        state=SavepointState(raw["state"]),
        stop=bool(raw.get("stop", False)),
        trigger_time=when,
        trigger_id=raw.get("triggerId"),
        trigger_nonce=raw.get("triggerNonce"),
        location=raw.get("location"),
        error=raw.get("error"),
    )


def _rescale_record(raw: Mapping[str, Any] | None) -> RescaleRecord | None:
    if not raw or raw.get("from") is None or raw.get("to") is None:
        return None
    return RescaleRecord(
        source=int(raw["from"]),
        target=int(raw["to"]),
        phase=RescalePhase(raw.get("phase", "PODS")),
        start_time=parse_time(raw.get("startTime"))
        or datetime.datetime.fromtimestamp(0, datetime.UTC),
    )


def savepoint_dict(sp: SavepointRecord | None) -> dict[str, Any] | None:
    if sp is None:
        return None
    found = {
        "reason": sp.reason.value,
        "state": sp.state.value,
        "stop": sp.stop,
        "triggerTime": iso(sp.trigger_time),
        "triggerId": sp.trigger_id,
        "triggerNonce": sp.trigger_nonce,
        "location": sp.location,
        "error": sp.error,
    }
    return {k: v for k, v in found.items() if v is not None}


# -- the new status ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class StatusInput:
    prior: Mapping[str, Any]
    obs: observation.Observation
    plan: plan.Plan
    problems: tuple[validate.Problem, ...] = ()
    #: an action of the previous cycle or of this one failed (kept until a cycle succeeds)
    action_error: str | None = None


def build_status(inp: StatusInput) -> dict[str, Any]:
    """The whole status after this cycle (``None`` values: fields to remove)."""
    obs, rec, prior = inp.obs, inp.plan.recorded, inp.prior
    jm = obs.jobmanager
    job = jm.job if jm is not None else None
    reconciled = rec.reconciled
    suspended = inp.plan.operation is plan.Operation.SUSPENDED
    tms = [p for p in obs.taskmanagers if p.healthy]
    ready = sum(1 for p in tms if p.ready)
    job_state = _job_state(job, jm, suspended)
    expected = reconciled.job.parallelism if reconciled is not None else 0
    stable = (
        job_state == dto.JobState.RUNNING.value
        and inp.plan.operation is plan.Operation.DEPLOYED
        and ready >= expected
        and not inp.problems
    )
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "lifecycleState": _lifecycle(inp, job_state, stable),
        "jobStatus": (
            {
                "state": job_state,
                "jobId": rec.job_id,
                "restoreGeneration": rec.restore_generation,
                "maxParallelism": rec.max_parallelism,
                "parallelism": job.parallelism if job is not None else None,
                "startTime": _from_ms(job.start_time_ms) if job is not None else None,
                "restarts": job.restarts if job is not None else None,
            }
        ),
        "lastCheckpoint": _checkpoint(jm.last_checkpoint if jm else None)
        or prior.get("lastCheckpoint"),
        "lastSavepoint": _last_savepoint(inp),
        "savepoint": savepoint_dict(rec.savepoint),
        "upgradeSavepointPath": rec.upgrade_savepoint_path,
        "taskManagers": {
            "replicas": len(tms),
            "ready": ready,
            "labelSelector": names.taskmanager_selector(obs.name),
        },
        "reconciliation": (
            {
                "state": inp.plan.operation.value if inp.plan.operation else None,
                "lastReconciledSpec": model.spec_json(rec.reconciled_raw)
                if rec.reconciled_raw is not None
                else None,
                "lastStableSpec": model.spec_json(rec.reconciled_raw)
                if stable and rec.reconciled_raw is not None
                else rec.stable_json,
                "rescale": _rescale_dict(rec.rescale),
                "lastRescaleTime": iso(rec.last_rescale_time) if rec.last_rescale_time else None,
            }
        ),
        "error": _error(inp),
    }
    status["conditions"] = _conditions(inp, status, stable=stable, ready=ready)
    return status


def _job_state(
    job: dto.JobDetails | None, jm: observation.JobManagerView | None, suspended: bool
) -> str:
    if suspended:
        return dto.JobState.SUSPENDED.value
    if job is not None:
        return job.state.value
    if jm is not None and jm.reachable:
        return dto.JobState.CREATED.value
    return "UNKNOWN"


def _lifecycle(inp: StatusInput, job_state: str, stable: bool) -> str:
    operation = inp.plan.operation
    if inp.plan.recorded.reconciled_raw is None:
        return "CREATED"
    if operation is plan.Operation.SUSPENDED:
        return "SUSPENDED"
    sp = inp.plan.recorded.savepoint
    teardown = sp is not None and sp.state.in_flight and sp.stop
    if operation is plan.Operation.UPGRADING or teardown:
        return "UPGRADING"
    if job_state == dto.JobState.FAILED.value:
        return "FAILED"
    return "STABLE" if stable else "DEPLOYED"


def _checkpoint(view: observation.CheckpointView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {
        "id": view.id,
        "path": view.path,
        "time": _from_ms(view.time_ms),
        "sizeBytes": view.size_bytes,
        "durationMs": view.duration_ms,
    }


def _last_savepoint(inp: StatusInput) -> Any:
    sp = inp.plan.recorded.savepoint
    jm = inp.obs.jobmanager
    from_jm = _checkpoint(jm.last_savepoint if jm else None)
    if sp is not None and sp.state is SavepointState.COMPLETED and sp.location:
        prior = inp.prior.get("lastSavepoint") or {}
        if prior.get("path") != sp.location and (from_jm or {}).get("path") != sp.location:
            return {"path": sp.location, "time": iso(inp.obs.now)}
    return from_jm or inp.prior.get("lastSavepoint")


def _rescale_dict(rs: RescaleRecord | None) -> dict[str, Any] | None:
    if rs is None:
        return None
    return {
        "from": rs.source,
        "to": rs.target,
        "phase": rs.phase.value,
        "startTime": iso(rs.start_time),
    }


def _error(inp: StatusInput) -> str | None:
    if inp.problems:
        return "; ".join(str(p) for p in inp.problems)
    return inp.action_error or inp.plan.warning


# -- conditions ----------------------------------------------------------------------------------
def _conditions(
    inp: StatusInput, status: Mapping[str, Any], *, stable: bool, ready: int
) -> list[dict[str, Any]]:
    rec = inp.plan.recorded
    expected = rec.reconciled.job.parallelism if rec.reconciled is not None else 0
    job_state = status["jobStatus"]["state"]
    if inp.problems:
        valid = ("False", "InvalidSpec", "; ".join(str(p) for p in inp.problems))
    else:
        valid = ("True", "SpecValid", "the spec is valid")
    if job_state == dto.JobState.RUNNING.value and ready >= expected:
        running = ("True", "JobRunning", f"the job runs with {ready} TaskManagers ready")
    elif inp.plan.operation is plan.Operation.SUSPENDED:
        running = ("False", "Suspended", "the job is suspended")
    else:
        running = (
            "False",
            "JobNotRunning" if job_state != dto.JobState.RUNNING.value else "TaskManagersNotReady",
            f"job {job_state}, {ready}/{expected} TaskManagers ready",
        )
    busy = inp.plan.operation not in (None, plan.Operation.DEPLOYED, plan.Operation.SUSPENDED)
    reconciling = (
        (
            "True",
            inp.plan.operation.value.title() if inp.plan.operation else "Reconciling",
            inp.plan.message or "reconciling",
        )
        if busy or (inp.plan.actions and not stable)
        else ("False", "Reconciled", inp.plan.message or "nothing to do")
    )
    prior = {c.get("type"): c for c in inp.prior.get("conditions") or ()}
    found = []
    for kind, (state, reason, message) in (
        ("Valid", valid),
        ("Ready", running),
        ("Reconciling", reconciling),
    ):
        before = prior.get(kind) or {}
        since = before.get("lastTransitionTime") if before.get("status") == state else None
        found.append(
            {
                "type": kind,
                "status": state,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since or iso(inp.obs.now),
                "observedGeneration": inp.obs.generation,
            }
        )
    return found


# -- patches and events --------------------------------------------------------------------------
def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) turning ``old`` into ``new``; None values remove keys."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if value is None:
            if key in old:
                patch[key] = None
        elif isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = merge_patch(before, value)
            if inner:
                patch[key] = inner
        elif value != before:
            patch[key] = value
    return patch


def _get(status: Mapping[str, Any], *path: str) -> Any:
    found: Any = status
    for key in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(key)
    return found


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or () if c.get("type") == kind), {})


def transition_events(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """One Event per transition between two statuses."""
    events: list[Event] = []
    before, after = _condition(old, "Valid"), _condition(new, "Valid")
    if after.get("status") == "False" and (
        before.get("status") != "False" or before.get("message") != after.get("message")
    ):
        events.append(Event(type=WARNING, reason="InvalidSpec", message=after.get("message", "")))
    elif after.get("status") == "True" and before.get("status") == "False":
        events.append(Event(type=NORMAL, reason="SpecValid", message="the spec is valid again"))
    events += _state_events(old, new)
    events += _savepoint_events(old, new)
    events += _rescale_events(old, new)
    error = new.get("error")
    if error and error != old.get("error") and after.get("status") != "False":
        events.append(Event(type=WARNING, reason="ReconcileError", message=error))
    return events


def _state_events(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    events = []
    was, now = old.get("lifecycleState"), new.get("lifecycleState")
    if now != was:
        kind = WARNING if now == "FAILED" else NORMAL
        text = f"lifecycle {was or 'NEW'} -> {now}"
        events.append(Event(type=kind, reason=str(now).title(), message=text))
    was, now = _get(old, "jobStatus", "state"), _get(new, "jobStatus", "state")
    if now != was and now is not None:
        bad = now in ("FAILING", "FAILED", "RESTARTING")
        events.append(
            Event(
                type=WARNING if bad else NORMAL,
                reason="JobState",
                message=f"job {_get(new, 'jobStatus', 'jobId')} {was or 'NEW'} -> {now}",
            )
        )
    was, now = _get(old, "jobStatus", "jobId"), _get(new, "jobStatus", "jobId")
    if was is not None and now != was:
        source = new.get("upgradeSavepointPath") or "the latest checkpoint or empty state"
        events.append(
            Event(
                type=NORMAL,
                reason="JobIdChanged",
                message=f"job id {was} -> {now} (restore generation "
                f"{_get(new, 'jobStatus', 'restoreGeneration')}, starting from {source}); "
                f"checkpoints of {was} are kept",
            )
        )
    return events


def _savepoint_events(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    was, now = old.get("savepoint") or {}, new.get("savepoint") or {}
    if not now or (was.get("state"), was.get("triggerTime")) == (
        now.get("state"),
        now.get("triggerTime"),
    ):
        return []
    reason = str(now.get("reason", "")).lower()
    state = now.get("state")
    if state == "COMPLETED":
        text = f"{reason} savepoint completed: {now.get('location')}"
        return [Event(type=NORMAL, reason="SavepointCompleted", message=text)]
    if state == "FAILED":
        text = f"{reason} savepoint failed: {now.get('error')}"
        return [Event(type=WARNING, reason="SavepointFailed", message=text)]
    if state == "TRIGGERING" or was.get("triggerTime") != now.get("triggerTime"):
        verb = "stop-with-savepoint" if now.get("stop") else "savepoint"
        return [Event(type=NORMAL, reason="SavepointTriggered", message=f"{reason} {verb}")]
    return []


def _rescale_events(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    was = _get(old, "reconciliation", "rescale") or {}
    now = _get(new, "reconciliation", "rescale") or {}
    events = []
    if now and (now.get("from"), now.get("to")) != (was.get("from"), was.get("to")):
        text = f"parallelism {now.get('from')} -> {now.get('to')}"
        events.append(Event(type=NORMAL, reason="RescaleStarted", message=text))
    if now and was and now.get("phase") != was.get("phase") and now.get("phase") == "REQUESTED":
        text = f"asked the JobManager to rescale to {now.get('to')}"
        events.append(Event(type=NORMAL, reason="RescaleRequested", message=text))
    done = _get(new, "reconciliation", "lastRescaleTime")
    if was and not now and done != _get(old, "reconciliation", "lastRescaleTime"):
        text = f"the job runs at parallelism {was.get('to')}"
        events.append(Event(type=NORMAL, reason="Rescaled", message=text))
    return events
