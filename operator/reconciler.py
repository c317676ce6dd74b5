"""The one reconcile path: observe -> validate -> plan -> status -> act, serialized per StreamJob.

kopf calls :meth:`Reconciler.reconcile` from its change handlers, a timer and pod events; all of
them may fire at once for one object, so each StreamJob has a lock and every cycle re-reads the
object from the API (never a handler's possibly stale body). The cycle:

1. read the StreamJob; skip it while it is being deleted (:meth:`Reconciler.finalize` owns that);
2. observe its pods, Service, ConfigMap, Secret and JobManager (:mod:`.observe`);
3. validate the spec (:mod:`.core.validate`); an invalid spec is not planned against;
4. plan (:mod:`.core.planner`) and compute the new status (:mod:`.core.status`);
5. patch the status, with the observed resourceVersion as a precondition: a conflict (a user's
   edit, kopf's own bookkeeping, a second operator replica) drops the cycle before any action,
   and it runs again on fresh state;
6. post the transition Events, then act (:mod:`.act`); a savepoint trigger's outcome (its id,
   or FAILED when the JobManager refused it) is recorded in a second, small patch, the only one.

The operator's bookkeeping lives in status (lineage, last reconciled spec, operations in flight),
so a restarted operator continues where the last one stopped. In memory only: the last seen pod
uids (to report a pod that vanished) and the last action error (shown in the next status).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from streamjob.jobmanager import dto
from streamjob.operator import act, observe
from streamjob.operator.clients import jobmanager, kube
from streamjob.operator.core import (
    actions,
    cycle,
    model,
    names,
    observation,
    plan,
    status,
    validate,
)

log = logging.getLogger(__name__)

Key = tuple[str, str]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Reconciler:
    def __init__(
        self,
        *,
        client: kube.KubeClient,
        connector: jobmanager.Connector,
        settings: plan.PlanSettings,
        clock: Callable[[], datetime.datetime] = utc_now,
        max_requeue_s: float = 10.0,
    ) -> None:
        self.client = client
        self.connector = connector
        self.settings = settings
        self.clock = clock
        self.max_requeue_s = max_requeue_s
        self._locks: dict[Key, asyncio.Lock] = {}
        self._known: dict[Key, dict[str, str]] = {}
        self._errors: dict[Key, str] = {}
        self._pokes: dict[Key, asyncio.Task[None]] = {}
        self._due: dict[Key, float] = {}
        #: StreamJobs whose deletion flow runs: their reconciles return at once
        self._deleting: set[Key] = set()

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- entry points -------------------------------------------------------------------------
    async def reconcile(self, namespace: str, name: str) -> float | None:
        """One cycle (two if the status patch conflicted); returns when to look again."""
        key = (namespace, name)
        if key in self._deleting:
            return None
        async with self._lock(key):
            for _ in range(2):
                if key in self._deleting:
                    return None
                try:
                    requeue = await self._cycle(key)
                except kube.Conflict:
                    log.info("%s/%s changed during the cycle: observing again", *key)
                    continue
                if requeue is not None:
                    self.poke(namespace, name, delay=min(requeue, self.max_requeue_s))
                return requeue
        return None

    def poke(self, namespace: str, name: str, *, delay: float = 0.0) -> None:
        """Reconcile soon (a pod failed, or a plan is waiting for something)."""
        key = (namespace, name)
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._pokes.get(key)
        if pending is not None and not pending.done():
            if self._due.get(key, due) <= due:
                return  # one is due sooner anyway
            pending.cancel()
        self._due[key] = due

        async def later() -> None:
            await asyncio.sleep(delay)
            self._pokes.pop(key, None)
            try:
                await self.reconcile(namespace, name)
            except Exception:
                log.exception("reconcile of %s/%s failed", namespace, name)

        self._pokes[key] = loop.create_task(later())

    async def close(self) -> None:
        tasks = list(self._pokes.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pokes.clear()

    def forget(self, key: Key) -> None:
        self._deleting.discard(key)
        self._known.pop(key, None)
        self._errors.pop(key, None)
        task = self._pokes.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # -- the cycle ----------------------------------------------------------------------------
    async def _cycle(self, key: Key) -> float | None:
        namespace, name = key
        body = await self.client.get_streamjob(namespace, name)
        if body is None:
            self.forget(key)
            return None
        if body["metadata"].get("deletionTimestamp"):
            return None
        reading = cycle.read(body)
        obs = await observe.observe(
            client=self.client,
            connector=self.connector,
            body=body,
            spec=reading.spec,
            recorded=reading.recorded,
            known=self._known.get(key, {}),
            now=self.clock(),
        )
        decision = cycle.decide(
            reading, obs, settings=self.settings, action_error=self._errors.get(key)
        )
        planned = decision.plan
        if decision.patch:
            rv = body["metadata"].get("resourceVersion")
            await self.client.patch_streamjob_status(
                namespace, name, decision.patch, resource_version=rv
            )
        for event in decision.events:
            await self._event(body, event)
        for action in planned.actions:
            log.info("%s/%s: %s", namespace, name, action.describe())
        result = await act.act(
            planned.actions,
            client=self.client,
            connector=self.connector,
            target=observe.target(obs),
            namespace=namespace,
        )
        for event in result.events:
            await self._event(body, event)
        if result.trigger_id is not None or isinstance(result.failed, actions.TriggerSavepoint):
            # the trigger's outcome: its id, or at once FAILED when the JobManager refused it
            # (e.g. the job is no longer RUNNING), so no cycle waits for it until the timeout
            record = status.savepoint_dict(planned.recorded.savepoint) or {}
            if result.trigger_id is not None:
                record.update(triggerId=result.trigger_id, state="IN_PROGRESS")
            else:
                record.update(state="FAILED", error=result.error)
            await self.client.patch_streamjob_status(
                namespace, name, {"savepoint": record}, resource_version=None
            )
        if result.error is not None:
            self._errors[key] = result.error
        else:
            self._errors.pop(key, None)
        removed = {
            uid
            for a in planned.actions
            if isinstance(a, actions.RemoveTerminatedPods | actions.DeletePods)
            for _, uid in a.pods
        }
        self._known[key] = {p.name: p.uid for p in obs.pods if p.uid not in removed}
        if result.error is not None:
            return plan.BUSY_REQUEUE_S * 5
        return planned.requeue_s

    async def _event(self, body: Mapping[str, Any], event: status.Event) -> None:
        try:
            await self.client.post_event(
                body, type=event.type, reason=event.reason, message=event.message
            )
        except kube.KubeError as exc:
            log.warning("cannot post event %s: %s", event.reason, exc)

    # -- deletion -----------------------------------------------------------------------------
    async def finalize(self, namespace: str, name: str, *, poll_s: float = 0.5) -> None:
        """Deletion: an optional final savepoint (with a timeout), then the children go.

        Checkpoints and savepoints are never deleted: the Event names where they stay. The
        children are deleted explicitly (owner references let a real cluster's garbage
        collector do it too, but not every API server has one). kopf may call this again after
        it succeeded (it runs deletion handlers until it could release the finalizer, e.g.
        while a timer is still exiting): a call that finds no child left does nothing.
        """
        key = (namespace, name)
        self._deleting.add(key)
        async with self._lock(key):
            body = await self.client.get_streamjob(namespace, name)
            if body is None or not await self._has_children(namespace, name):
                log.info("%s/%s: deleted, nothing left to clean up", namespace, name)
                self.forget(key)
                return
            parsed = validate.parse(body.get("spec") or {})
            spec = parsed if isinstance(parsed, model.StreamJobSpec) else None
            recorded = status.recorded_from_status(body.get("status"))
            uid = body["metadata"].get("uid", "")
            job_id = names.job_id(uid, recorded.restore_generation)
            if spec is not None and spec.job.savepoint_on_delete:
                await self._final_savepoint(body, spec, recorded, job_id, poll_s=poll_s)
            # no status patch here: kopf releases the finalizer with a resourceVersion test
            pods = await self.client.list_pods(namespace, names.labels(name))
            for pod in pods:
                meta = pod["metadata"]
                await self.client.delete_pod(namespace, meta["name"], uid=meta.get("uid"))
            await self.client.delete_service(namespace, names.jobmanager_service(name))
            await self.client.delete_config_map(namespace, names.config_map(name))
            where = f"{spec.checkpoints.dir.rstrip('/')}/{job_id}" if spec else "its checkpoint dir"
            await self._event(
                body,
                status.Event(
                    type=status.NORMAL,
                    reason="Deleted",
                    message=f"deleted {len(pods)} pods, the Service and the ConfigMap; "
                    f"checkpoints are kept under {where}",
                ),
            )
            self.forget(key)

    async def _has_children(self, namespace: str, name: str) -> bool:
        if await self.client.list_pods(namespace, names.labels(name)):
            return True
        if await self.client.get_service(namespace, names.jobmanager_service(name)) is not None:
            return True
        return await self.client.get_config_map(namespace, names.config_map(name)) is not None

    async def _final_savepoint(
        self,
        body: Mapping[str, Any],
        spec: model.StreamJobSpec,
        recorded: observation.Recorded,
        job_id: str,
        *,
        poll_s: float,
    ) -> None:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        obs = await observe.observe(
            client=self.client,
            connector=self.connector,
            body=body,
            spec=spec,
            recorded=recorded,
            known={},
            now=self.clock(),
        )
        jm = obs.jobmanager
        if jm is None or not jm.running:
            state = jm.job_state.value if jm and jm.job_state else "not reachable"
            await self._event(
                body,
                status.Event(
                    type=status.WARNING,
                    reason="FinalSavepointSkipped",
                    message=f"no final savepoint: the job is {state}",
                ),
            )
            return
        client = self.connector(observe.target(obs))
        timeout = spec.job.savepoint_on_delete_timeout_s
        try:
            trigger = await client.trigger_savepoint(
                job_id, target_dir=spec.checkpoints.savepoints, stop=True
            )
            answer = await asyncio.wait_for(
                self._wait_savepoint(client, job_id, trigger, poll_s=poll_s), timeout
            )
        except (jobmanager.JobManagerError, TimeoutError) as exc:
            text = f"timed out after {timeout:g}s" if isinstance(exc, TimeoutError) else str(exc)
            await self._event(
                body,
                status.Event(
                    type=status.WARNING,
                    reason="FinalSavepointFailed",
                    message=f"final savepoint of {name} in {namespace}: {text}; deleting anyway "
                    "(the latest checkpoint is kept)",
                ),
            )
            return
        finally:
            await client.aclose()
        if answer.status is dto.OperationStatus.COMPLETED:
            await self._event(
                body,
                status.Event(
                    type=status.NORMAL,
                    reason="FinalSavepoint",
                    message=f"final savepoint at {answer.location}",
                ),
            )
        else:
            await self._event(
                body,
                status.Event(
                    type=status.WARNING,
                    reason="FinalSavepointFailed",
                    message=f"final savepoint failed: {answer.failure_cause}; deleting anyway",
                ),
            )

    @staticmethod
    async def _wait_savepoint(
        client: jobmanager.JobManagerService, job_id: str, trigger: str, *, poll_s: float
    ) -> dto.SavepointStatus:
        while True:
            answer = await client.savepoint_status(job_id, trigger)
            if answer.status is not dto.OperationStatus.IN_PROGRESS:
                return answer
            await asyncio.sleep(poll_s)
