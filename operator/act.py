"""The *act* step of a reconcile cycle: carry out a plan's actions, in order.

Creating what already exists is success (deterministic names); deleting what is gone is
success; a pod is deleted only in the incarnation the plan saw (a uid precondition). Reporting a
failed TaskManager to the JobManager is best effort: if the JobManager cannot be reached, its
heartbeat timeout finds the loss anyway (and a 404 means it had already declared it lost). Any
other failure stops the remaining actions and is returned, for the next cycle's status
(``status.error``) and an Event.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from streamjob.operator.clients import jobmanager, kube
from streamjob.operator.core import actions, status

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ActResult:
    trigger_id: str | None = None
    error: str | None = None
    #: the action that failed (the ones after it were not tried)
    failed: actions.Action | None = None
    events: list[status.Event] = dataclasses.field(default_factory=list)


async def act(
    todo: Sequence[actions.Action],
    *,
    client: kube.KubeClient,
    connector: jobmanager.Connector,
    target: jobmanager.JobManagerTarget,
    namespace: str,
) -> ActResult:
    result = ActResult()
    for action in todo:
        try:
            await _one(
                action,
                client=client,
                connector=connector,
                target=target,
                namespace=namespace,
                result=result,
            )
        except (kube.KubeError, jobmanager.JobManagerError) as exc:
            result.error = f"{action.describe()} failed: {exc}"
            result.failed = action
            result.events.append(
                status.Event(type=status.WARNING, reason="ActionFailed", message=result.error)
            )
            log.warning("%s/%s: %s", namespace, target.name, result.error)
            break
    return result


async def _one(
    action: actions.Action,
    *,
    client: kube.KubeClient,
    connector: jobmanager.Connector,
    target: jobmanager.JobManagerTarget,
    namespace: str,
    result: ActResult,
) -> None:
    match action:
        case actions.ApplyConfigMap(manifest=manifest):
            await client.apply_config_map(manifest)
        case actions.CreateService(manifest=manifest) | actions.CreatePod(manifest=manifest):
            try:
                await client.create(manifest)
            except kube.AlreadyExists:
                log.debug("%s: already there", action.describe())
        case actions.RemoveTerminatedPods(pods=pods):
            for name, uid in pods:
                await client.delete_pod(namespace, name, uid=uid)
            result.events.append(
                status.Event(
                    type=status.WARNING,
                    reason="PodReplaced",
                    message=f"pod {', '.join(n for n, _ in pods)} ended: replacing it",
                )
            )
        case actions.DeletePods(pods=pods, reason=reason):
            for name, uid in pods:
                await client.delete_pod(namespace, name, uid=uid)
            result.events.append(
                status.Event(
                    type=status.NORMAL,
                    reason="PodsDeleted",
                    message=f"deleted {', '.join(n for n, _ in pods)} ({reason})",
                )
            )
        case actions.ReportFailedTaskManager(pod_name=name, pod_uid=uid):
            try:
                await _call_report(connector, target, uid)
                text = f"TaskManager {name} ({uid}) failed: reported to the JobManager"
            except jobmanager.JobManagerError as exc:
                if exc.not_found:  # no live TaskManager in that pod: already declared lost
                    text = f"TaskManager {name} ({uid}) failed: the JobManager already knew"
                else:
                    text = f"TaskManager {name} ({uid}) failed; the JobManager was not told ({exc})"
            result.events.append(
                status.Event(type=status.WARNING, reason="TaskManagerFailed", message=text)
            )
        case actions.TriggerSavepoint(job_id=job_id, target_dir=target_dir, stop=stop):
            client_jm = connector(target)
            try:
                result.trigger_id = await client_jm.trigger_savepoint(
                    job_id, target_dir=target_dir, stop=stop
                )
            finally:
                await client_jm.aclose()
        case actions.Rescale(job_id=job_id, parallelism=parallelism):
            client_jm = connector(target)
            try:
                await client_jm.rescale(job_id, parallelism)
            finally:
                await client_jm.aclose()
        case _:
            raise TypeError(f"no way to carry out {action!r}")


async def _call_report(
    connector: jobmanager.Connector, target: jobmanager.JobManagerTarget, uid: str
) -> None:
    client_jm = connector(target)
    try:
        await client_jm.report_failed_taskmanager(uid)
    finally:
        await client_jm.aclose()
