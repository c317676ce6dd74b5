"""Spec changes against ``lastReconciledSpec``, and the first deployment. Pure.

:func:`first_deploy` records the first reconciled spec and its lineage and starts the pods (or
nothing, when created suspended). :func:`apply_change` names what changed and hands it to its
flow: suspend (:mod:`.upgrades`, reason SUSPEND) and resume (a new lineage when the resumed spec
asks for one), an upgrade of image, entrypoint, configuration or ``restartNonce`` or an explicit
restore (:mod:`.upgrades`), a parallelism change (:mod:`.scaling`), a savepoint nonce
(:mod:`.savepoints`); fields that apply without a restart (``upgradeMode``,
``savepointOnDelete``...) are just recorded. None: nothing changed.
"""

from __future__ import annotations

import dataclasses

from streamjob.operator.core import lineage, maintenance, model, savepoints, scaling, upgrades
from streamjob.operator.core.observation import Recorded, SavepointReason
from streamjob.operator.core.plan import Operation, Plan, PlanInput


def first_deploy(inp: PlanInput, rec: Recorded, spec: model.StreamJobSpec) -> Plan:
    rec = dataclasses.replace(
        lineage.with_generation(
            inp, rec, generation=rec.restore_generation, path=rec.upgrade_savepoint_path
        ),
        reconciled_raw=spec.raw,
    )
    if spec.job.state is model.JobState.SUSPENDED:
        return Plan(recorded=rec, operation=Operation.SUSPENDED, message="created suspended")
    return maintenance.maintain(inp, rec, spec, message="deploying the JobManager and TaskManagers")


def apply_change(
    inp: PlanInput, rec: Recorded, old: model.StreamJobSpec, new: model.StreamJobSpec
) -> Plan | None:
    running_before = old.job.state is model.JobState.RUNNING
    running_now = new.job.state is model.JobState.RUNNING
    key_changed = model.deploy_key(old) != model.deploy_key(new)
    restore = lineage.explicit_restore(old, new)
    if not running_before:
        if not running_now:
            if dict(new.raw) == dict(old.raw):
                return None
            return Plan(
                recorded=dataclasses.replace(rec, reconciled_raw=new.raw),
                operation=Operation.SUSPENDED,
                message="spec updated while suspended",
            )
        return _resume(inp, rec, new, key_changed=key_changed, restore=restore)
    if not running_now:
        return upgrades.stop_job(inp, rec, new, reason=SavepointReason.SUSPEND)
    if key_changed or restore is not None:
        return upgrades.stop_job(inp, rec, new, reason=SavepointReason.UPGRADE)
    if new.job.parallelism != old.job.parallelism:
        return scaling.start(inp, rec, old, new)
    nonce = new.savepoint_trigger_nonce
    if nonce is not None and nonce != old.savepoint_trigger_nonce:
        return savepoints.manual(inp, rec, old, nonce)
    if dict(new.raw) != dict(old.raw):  # live fields only (upgradeMode, savepointOnDelete...)
        return maintenance.maintain(inp, dataclasses.replace(rec, reconciled_raw=new.raw), new)
    return None


def _resume(
    inp: PlanInput,
    rec: Recorded,
    new: model.StreamJobSpec,
    *,
    key_changed: bool,
    restore: str | None,
) -> Plan:
    """Resume: the same lineage, unless the resumed spec restores a savepoint or changed the
    code with ``upgradeMode: stateless``."""
    generation, path = rec.restore_generation, rec.upgrade_savepoint_path
    if restore is not None:
        generation, path = generation + 1, restore
    elif key_changed and new.job.upgrade_mode is model.UpgradeMode.STATELESS:
        generation, path = generation + 1, None
    rec = dataclasses.replace(
        lineage.with_generation(inp, rec, generation=generation, path=path),
        reconciled_raw=new.raw,
    )
    return maintenance.maintain(inp, rec, new, message="resuming")
