"""Maintenance: keep the reconciled deployment whole (creation and failures). Pure.

Given the spec to run, :func:`maintain` plans what is missing or broken: the ConfigMap and the
Service, the JobManager pod and one TaskManager pod per subtask (the first deployment is just
maintenance of an empty world); pods of an older deployment or lineage are deleted; a pod whose
process ended (``restartPolicy: Never``) is removed so a replacement can take its name, and a
TaskManager that failed or vanished is reported to the JobManager, so failover starts at once;
surplus TaskManagers (ordinals beyond the parallelism) go once the job no longer runs on them.
A suspended spec tears the pods down. The other flows end in maintenance of the spec they
settle on (:mod:`.scaling`, :mod:`.savepoints`, :mod:`.changes`).
"""

from __future__ import annotations

from streamjob.jobmanager import dto
from streamjob.operator.core import actions, lineage, model, names, render
from streamjob.operator.core.observation import Recorded
from streamjob.operator.core.plan import BUSY_REQUEUE_S, Operation, Plan, PlanInput


def maintain(
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
    ctx = lineage.context(inp, rec, spec)
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
