"""The planner: (spec, recorded status, observation) -> actions and the new bookkeeping. Pure.

One cycle, in order of precedence:

1. a savepoint in flight (manual, or the first half of a savepoint upgrade or suspend) is
   followed until it completed, failed or timed out; a completed stop-with-savepoint tears the
   pods down and bumps the restore generation, so the next job id restores it;
2. a rescale in flight is followed: scale up creates the TaskManager pods, waits until they are
   ready, then asks the JobManager; scale down asks the JobManager first and deletes the highest
   ordinals only once the job runs at the new parallelism; a new target arriving before the
   JobManager was asked is coalesced into the one in flight;
3. nothing reconciled yet: the first deployment;
4. a spec change against ``lastReconciledSpec``: suspend, resume, upgrade (image, entrypoint,
   configuration, ``restartNonce``, by ``upgradeMode``; a new ``initialSavepointPath`` is an
   explicit restore), rescale (after a cooldown, only while the job runs), a savepoint nonce;
5. otherwise maintenance: missing children are created, terminated pods removed and replaced
   (a failed TaskManager's uid reported to the JobManager), stale pods deleted.

A plan holds at most one destructive action (:mod:`.actions`), and the shell writes the plan's
bookkeeping to status before acting, so every destructive step is recorded before it happens and
a cycle that crashed halfway is finished by the next one.
"""

from __future__ import annotations

import dataclasses
import enum

from streamjob.jobmanager import dto
from streamjob.operator.core import actions, model, names, observation, render
from streamjob.operator.core.observation import (
    Recorded,
    RescalePhase,
    RescaleRecord,
    SavepointReason,
    SavepointRecord,
    SavepointState,
)

#: how soon to look again while something is in progress
BUSY_REQUEUE_S = 1.0


class Operation(enum.StrEnum):
    """``status.reconciliation.state``: what the operator is in the middle of."""

    DEPLOYED = "DEPLOYED"
    UPGRADING = "UPGRADING"
    RESCALING = "RESCALING"
    SAVEPOINTING = "SAVEPOINTING"
    SUSPENDED = "SUSPENDED"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanSettings:
    rescale_cooldown_s: float = 30.0
    savepoint_timeout_s: float = 600.0
    savepoint_retry_s: float = 30.0
    rescale_retry_s: float = 60.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanInput:
    #: the current spec, None when it does not validate (the reconciled one is kept running)
    spec: model.StreamJobSpec | None
    recorded: Recorded
    obs: observation.Observation
    settings: PlanSettings = dataclasses.field(default_factory=PlanSettings)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    recorded: Recorded
    operation: Operation | None
    actions: tuple[actions.Action, ...] = ()
    message: str = ""
    #: a problem the user should see (a failed savepoint, a fallback taken)
    warning: str | None = None
    requeue_s: float | None = None

    def __post_init__(self) -> None:
        if actions.destructive_count(self.actions) > 1:
            raise ValueError(f"a plan may hold one destructive action: {self.actions}")


def plan(inp: PlanInput) -> Plan:
    rec = _adopt(inp)
    if rec.savepoint is not None and rec.savepoint.state.in_flight:
        return _follow_savepoint(inp, rec, rec.savepoint)
    if rec.rescale is not None:
        return _follow_rescale(inp, rec, rec.rescale)
    reconciled = rec.reconciled
    if reconciled is None:
        if inp.spec is None:
            return Plan(recorded=rec, operation=None, message="waiting for a valid spec")
        return _first_deploy(inp, rec, inp.spec)
    if inp.spec is not None:
        changed = _change(inp, rec, reconciled, inp.spec)
        if changed is not None:
            return changed
    return _maintain(inp, rec, reconciled)


def _adopt(inp: PlanInput) -> Recorded:
    """Keep the lineage consistent: job id from (uid, generation), the adopted max parallelism."""
    rec = inp.recorded
    jm = inp.obs.jobmanager
    max_p = rec.max_parallelism
    if max_p is None and jm is not None and jm.job is not None and jm.job.max_parallelism > 0:
        max_p = jm.job.max_parallelism
    reconciled = rec.reconciled
    if reconciled is not None and reconciled.job.max_parallelism is not None:
        max_p = reconciled.job.max_parallelism
    job_id = names.job_id(inp.obs.uid, rec.restore_generation)
    return dataclasses.replace(rec, max_parallelism=max_p, job_id=job_id)


def _lineage(inp: PlanInput, rec: Recorded, *, generation: int, path: str | None) -> Recorded:
    return dataclasses.replace(
        rec,
        restore_generation=generation,
        job_id=names.job_id(inp.obs.uid, generation),
        upgrade_savepoint_path=path,
    )


def context(inp: PlanInput, rec: Recorded, spec: model.StreamJobSpec) -> render.RenderContext:
    """What the children of ``spec`` are rendered from, with the recorded lineage."""
    path = rec.upgrade_savepoint_path
    if path is None and rec.restore_generation == 0:
        path = spec.job.initial_savepoint_path
    return render.RenderContext(
        name=inp.obs.name,
        namespace=inp.obs.namespace,
        uid=inp.obs.uid,
        spec=spec,
        restore_generation=rec.restore_generation,
        max_parallelism=rec.max_parallelism,
        from_savepoint=path,
    )


# -- maintenance ---------------------------------------------------------------------------------
def _maintain(
    inp: PlanInput,
    rec: Recorded,
    spec: model.StreamJobSpec,
    *,
    taskmanagers: int | None = None,
    operation: Operation = Operation.DEPLOYED,
    message: str = "",
    warning: str | None = None,
    requeue_s: float | None = None,
) -> Plan:
    obs = inp.obs
    live = [p for p in obs.pods if not p.deleting]
    if spec.job.state is model.JobState.SUSPENDED:
        leftovers = tuple((p.name, p.uid) for p in live)
        teardown = (actions.DeletePods(pods=leftovers, reason="suspended"),) if leftovers else ()
        return Plan(
            recorded=rec,
            operation=Operation.SUSPENDED,
            actions=teardown,
            message=message,
            warning=warning,
        )
    ctx = context(inp, rec, spec)
    todo: list[actions.Action] = []
    config_map = render.build_config_map(ctx)
    if obs.config_map_data != config_map["data"]:
        todo.append(actions.ApplyConfigMap(manifest=config_map))
    if not obs.service_exists:
        todo.append(actions.CreateService(manifest=render.build_service(ctx)))
    stale = tuple(
        (p.name, p.uid)
        for p in live
        if p.deploy_key != ctx.deploy_key or p.restore_generation != ctx.restore_generation
    )
    if stale:
        todo.append(actions.DeletePods(pods=stale, reason="upgrade"))
        return Plan(
            recorded=rec,
            operation=Operation.UPGRADING,
            actions=tuple(todo),
            message=message or f"deleting {len(stale)} pods of the previous deployment",
            warning=warning,
            requeue_s=BUSY_REQUEUE_S,
        )
    terminated = [p for p in live if p.terminated]
    for pod in terminated:
        if pod.role == names.ROLE_TASKMANAGER:
            todo.append(actions.ReportFailedTaskManager(pod_name=pod.name, pod_uid=pod.uid))
    for name, uid in obs.vanished:
        if names.taskmanager_ordinal(obs.name, name) is not None:
            todo.append(actions.ReportFailedTaskManager(pod_name=name, pod_uid=uid))
    if terminated:
        todo.append(actions.RemoveTerminatedPods(pods=tuple((p.name, p.uid) for p in terminated)))
    taken = {p.name for p in obs.pods if p.deleting or not p.terminated}
    count = taskmanagers if taskmanagers is not None else spec.job.parallelism
    if names.jobmanager_pod(obs.name) not in taken:
        todo.append(actions.CreatePod(manifest=render.build_jobmanager_pod(ctx)))
    for ordinal in range(count):
        if names.taskmanager_pod(obs.name, ordinal) not in taken:
            todo.append(actions.CreatePod(manifest=render.build_taskmanager_pod(ctx, ordinal)))
    surplus = tuple(
        (p.name, p.uid) for p in obs.taskmanagers if (p.ordinal or 0) >= count and p.healthy
    )
    if surplus and _job_fits(inp, count):
        todo.append(actions.DeletePods(pods=surplus, reason=f"scaled down to {count}"))
    busy = any(not isinstance(a, actions.ReportFailedTaskManager) for a in todo)
    return Plan(
        recorded=rec,
        operation=operation,
        actions=tuple(todo),
        message=message,
        warning=warning,
        requeue_s=requeue_s or (BUSY_REQUEUE_S if busy else None),
    )


def _job_fits(inp: PlanInput, count: int) -> bool:
    """Surplus TaskManagers may go once the job no longer runs on them."""
    jm = inp.obs.jobmanager
    if jm is None or jm.job is None:
        return True
    return jm.job.state is not dto.JobState.RUNNING or jm.job.parallelism <= count


# -- first deployment and changes ----------------------------------------------------------------
def _first_deploy(inp: PlanInput, rec: Recorded, spec: model.StreamJobSpec) -> Plan:
    rec = dataclasses.replace(
        _lineage(inp, rec, generation=rec.restore_generation, path=rec.upgrade_savepoint_path),
        reconciled_raw=spec.raw,
    )
    if spec.job.state is model.JobState.SUSPENDED:
        return Plan(recorded=rec, operation=Operation.SUSPENDED, message="created suspended")
    return _maintain(inp, rec, spec, message="deploying the JobManager and TaskManagers")


def _change(
    inp: PlanInput, rec: Recorded, old: model.StreamJobSpec, new: model.StreamJobSpec
) -> Plan | None:
    running_before = old.job.state is model.JobState.RUNNING
    running_now = new.job.state is model.JobState.RUNNING
    key_changed = model.deploy_key(old) != model.deploy_key(new)
    restore = _explicit_restore(old, new)
    if not running_before:
        if not running_now:
            if dict(new.raw) == dict(old.raw):
                return None
            return Plan(
                recorded=dataclasses.replace(rec, reconciled_raw=new.raw),
                operation=Operation.SUSPENDED,
                message="spec updated while suspended",
            )
        generation, path = rec.restore_generation, rec.upgrade_savepoint_path
        if restore is not None:
            generation, path = generation + 1, restore
        elif key_changed and new.job.upgrade_mode is model.UpgradeMode.STATELESS:
            generation, path = generation + 1, None
        rec = dataclasses.replace(
            _lineage(inp, rec, generation=generation, path=path), reconciled_raw=new.raw
        )
        return _maintain(inp, rec, new, message="resuming")
    if not running_now:
        return _teardown(inp, rec, new, reason=SavepointReason.SUSPEND)
    if key_changed or restore is not None:
        return _teardown(inp, rec, new, reason=SavepointReason.UPGRADE)
    if new.job.parallelism != old.job.parallelism:
        return _start_rescale(inp, rec, old, new)
    nonce = new.savepoint_trigger_nonce
    if nonce is not None and nonce != old.savepoint_trigger_nonce:
        return _manual_savepoint(inp, rec, old, nonce)
    if dict(new.raw) != dict(old.raw):  # live fields only (upgradeMode, savepointOnDelete...)
        return _maintain(inp, dataclasses.replace(rec, reconciled_raw=new.raw), new)
    return None


def _explicit_restore(old: model.StreamJobSpec, new: model.StreamJobSpec) -> str | None:
    path = new.job.initial_savepoint_path
    return path if path and path != old.job.initial_savepoint_path else None


def _teardown(
    inp: PlanInput, rec: Recorded, new: model.StreamJobSpec, *, reason: SavepointReason
) -> Plan:
    old = rec.reconciled
    assert old is not None
    restore = _explicit_restore(old, new)
    mode = new.job.upgrade_mode
    if restore is not None:
        return _finish_teardown(
            inp, rec, new, generation=rec.restore_generation + 1, path=restore, reason=reason
        )
    if mode is model.UpgradeMode.SAVEPOINT:
        jm = inp.obs.jobmanager
        if jm is not None and jm.running:
            return _trigger(inp, rec, old, reason=reason, stop=True, nonce=None)
        state = jm.job_state.value if jm is not None and jm.job_state else "not reachable"
        return _finish_teardown(
            inp,
            rec,
            new,
            generation=rec.restore_generation,
            path=rec.upgrade_savepoint_path,
            reason=reason,
            warning=f"upgradeMode savepoint needs a RUNNING job (it is {state}): restoring "
            "the latest checkpoint under the same job id instead (last-state)",
        )
    if mode is model.UpgradeMode.STATELESS:
        return _finish_teardown(
            inp, rec, new, generation=rec.restore_generation + 1, path=None, reason=reason
        )
    return _finish_teardown(
        inp,
        rec,
        new,
        generation=rec.restore_generation,
        path=rec.upgrade_savepoint_path,
        reason=reason,
    )


def _finish_teardown(
    inp: PlanInput,
    rec: Recorded,
    new: model.StreamJobSpec,
    *,
    generation: int,
    path: str | None,
    reason: SavepointReason,
    warning: str | None = None,
) -> Plan:
    rec = dataclasses.replace(
        _lineage(inp, rec, generation=generation, path=path), reconciled_raw=new.raw
    )
    live = tuple((p.name, p.uid) for p in inp.obs.pods if not p.deleting)
    suspend = reason is SavepointReason.SUSPEND
    todo = (actions.DeletePods(pods=live, reason=reason.value.lower()),) if live else ()
    return Plan(
        recorded=rec,
        operation=Operation.SUSPENDED if suspend else Operation.UPGRADING,
        actions=todo,
        message=("suspending" if suspend else "upgrading") + f" (job id {rec.job_id})",
        warning=warning,
        requeue_s=BUSY_REQUEUE_S,
    )


# -- savepoints ----------------------------------------------------------------------------------
def _manual_savepoint(inp: PlanInput, rec: Recorded, old: model.StreamJobSpec, nonce: int) -> Plan:
    jm = inp.obs.jobmanager
    if jm is None or not jm.running:
        state = jm.job_state.value if jm is not None and jm.job_state else "not reachable"
        return _maintain(
            inp,
            rec,
            old,
            message=f"savepoint (nonce {nonce}) waits for the job to run ({state})",
            requeue_s=BUSY_REQUEUE_S * 5,
        )
    return _trigger(inp, rec, old, reason=SavepointReason.MANUAL, stop=False, nonce=nonce)


def _trigger(
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
        return _maintain(
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


def _follow_savepoint(inp: PlanInput, rec: Recorded, sp: SavepointRecord) -> Plan:
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
            return _maintain(
                inp, _nonce_handled(rec, old, sp), old, message=f"savepoint at {location}"
            )
        target = inp.spec or old
        return _finish_teardown(
            inp,
            rec,
            target,
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
        return _maintain(
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
    return _maintain(
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


# -- rescaling -----------------------------------------------------------------------------------
def _start_rescale(
    inp: PlanInput, rec: Recorded, old: model.StreamJobSpec, new: model.StreamJobSpec
) -> Plan:
    now = inp.obs.now
    source, target = old.job.parallelism, new.job.parallelism
    if rec.last_rescale_time is not None:
        waited = (now - rec.last_rescale_time).total_seconds()
        if waited < inp.settings.rescale_cooldown_s:
            left = inp.settings.rescale_cooldown_s - waited
            return _maintain(
                inp,
                rec,
                old,
                message=f"rescale to {target} waits {left:.0f}s (cooldown)",
                requeue_s=left,
            )
    jm = inp.obs.jobmanager
    if jm is None or not jm.running:
        state = jm.job_state.value if jm is not None and jm.job_state else "not reachable"
        return _maintain(
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
        return _maintain(
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


def _follow_rescale(inp: PlanInput, rec: Recorded, rs: RescaleRecord) -> Plan:
    old = rec.reconciled
    assert old is not None and rec.job_id is not None
    obs = inp.obs
    jm = obs.jobmanager
    if rs.phase is RescalePhase.PODS:
        want = _wanted_parallelism(inp, old, rs)
        if want <= rs.source:  # withdrawn before the JobManager was asked
            return _maintain(
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
                actions=(
                    actions.Rescale(job_id=rec.job_id, parallelism=rs.target, scale_down=False),
                ),
                message=f"scaling up to {rs.target}: rescaling the job",
                requeue_s=BUSY_REQUEUE_S,
            )
        return _maintain(
            inp,
            dataclasses.replace(rec, rescale=rs),
            old,
            taskmanagers=rs.target,
            operation=Operation.RESCALING,
            message=f"scaling up to {rs.target}: {ready}/{rs.target} TaskManagers ready",
            requeue_s=BUSY_REQUEUE_S,
        )
    job = jm.job if jm is not None else None
    if job is not None and job.state is dto.JobState.RUNNING and job.parallelism == rs.target:
        raw = {**old.raw, "job": {**old.raw.get("job", {}), "parallelism": rs.target}}
        done = dataclasses.replace(rec, reconciled_raw=raw, rescale=None, last_rescale_time=obs.now)
        return _maintain(inp, done, model.parse_spec(raw), message=f"rescaled to {rs.target}")
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
    return _maintain(
        inp,
        rec,
        old,
        taskmanagers=max(rs.source, rs.target),
        operation=Operation.RESCALING,
        message=f"waiting for the job to run at parallelism {rs.target}",
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
