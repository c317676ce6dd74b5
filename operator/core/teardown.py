"""Tearing a deployment down into its next lineage (a suspend, or an upgrade's first half). Pure.

:func:`tear_down` records the lineage the next start uses (restore generation and the savepoint
it restores, from :mod:`.upgrades` or a completed stop-with-savepoint in :mod:`.savepoints`) and
the spec it was done for, and deletes every live pod in one destructive action. The next cycles
find the spec reconciled and maintenance (:mod:`.maintenance`) starts the new pods, or keeps
none while suspended.
"""

from __future__ import annotations

import dataclasses

from streamjob.operator.core import actions, lineage, model
from streamjob.operator.core.observation import Recorded, SavepointReason
from streamjob.operator.core.plan import BUSY_REQUEUE_S, Operation, Plan, PlanInput


def tear_down(
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
        lineage.with_generation(inp, rec, generation=generation, path=path),
        reconciled_raw=new.raw,
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
