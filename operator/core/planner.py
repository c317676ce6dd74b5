"""The planner: (spec, recorded status, observation) -> :class:`~.plan.Plan`. Pure.

One cycle, in order of precedence:

1. a savepoint in flight (manual, or the first half of a savepoint upgrade or suspend) is
   followed until it completed, failed or timed out (:mod:`.savepoints`); a completed
   stop-with-savepoint tears the pods down and bumps the restore generation, so the next job id
   restores it (:mod:`.teardown`);
2. a rescale in flight is followed (:mod:`.scaling`): scale up creates the TaskManager pods,
   waits until they are ready, then asks the JobManager; scale down asks the JobManager first
   and deletes the highest ordinals only once the job runs at the new parallelism; a new target
   arriving before the JobManager was asked is coalesced into the one in flight;
3. nothing reconciled yet: the first deployment (:mod:`.changes`);
4. a spec change against ``lastReconciledSpec`` (:mod:`.changes`): suspend, resume, upgrade
   (image, entrypoint, configuration, ``restartNonce``, by ``upgradeMode``: :mod:`.upgrades`; a
   new ``initialSavepointPath`` is an explicit restore), rescale (after a cooldown, only while
   the job runs), a savepoint nonce;
5. otherwise maintenance (:mod:`.maintenance`): missing children are created, terminated pods
   removed and replaced (a failed TaskManager's uid reported to the JobManager), stale pods
   deleted.

A plan holds at most one destructive action (:mod:`.actions`), and the shell writes the plan's
bookkeeping to status before acting, so every destructive step is recorded before it happens and
a cycle that crashed halfway is finished by the next one.
"""

from __future__ import annotations

from streamjob.operator.core import changes, lineage, maintenance, savepoints, scaling
from streamjob.operator.core.plan import Plan, PlanInput


def plan(inp: PlanInput) -> Plan:
    rec = lineage.adopt(inp)
    if rec.savepoint is not None and rec.savepoint.state.in_flight:
        return savepoints.follow(inp, rec, rec.savepoint)
    if rec.rescale is not None:
        return scaling.follow(inp, rec, rec.rescale)
    reconciled = rec.reconciled
    if reconciled is None:
        if inp.spec is None:
            return Plan(recorded=rec, operation=None, message="waiting for a valid spec")
        return changes.first_deploy(inp, rec, inp.spec)
    if inp.spec is not None:
        changed = changes.apply_change(inp, rec, reconciled, inp.spec)
        if changed is not None:
            return changed
    return maintenance.maintain(inp, rec, reconciled)
