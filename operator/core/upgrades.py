"""Stopping a running job for an upgrade or a suspend, by ``upgradeMode``. Pure.

- an explicit restore (a new ``initialSavepointPath``): a new lineage restoring that path;
- ``savepoint``: stop-with-savepoint first (:mod:`.savepoints`), and once it completed a new
  lineage restoring it; a job that is not RUNNING cannot take one, so the latest checkpoint
  under the same job id is used instead (last-state), with a warning;
- ``stateless``: a new lineage with empty state;
- ``last-state``: the same job id, so the new JobManager restores its latest checkpoint.

Every branch but the savepoint's first half ends in :func:`.teardown.tear_down`.
"""

from __future__ import annotations

from streamjob.operator.core import lineage, model, savepoints, teardown
from streamjob.operator.core.observation import Recorded, SavepointReason
from streamjob.operator.core.plan import Plan, PlanInput


def stop_job(
    inp: PlanInput, rec: Recorded, new: model.StreamJobSpec, *, reason: SavepointReason
) -> Plan:
    old = rec.reconciled
    assert old is not None
    restore = lineage.explicit_restore(old, new)
    mode = new.job.upgrade_mode
    if restore is not None:
        return teardown.tear_down(
            inp, rec, new, generation=rec.restore_generation + 1, path=restore, reason=reason
        )
    if mode is model.UpgradeMode.SAVEPOINT:
        jm = inp.obs.jobmanager
        if jm is not None and jm.running:
            return savepoints.trigger(inp, rec, old, reason=reason, stop=True, nonce=None)
        state = jm.job_state.value if jm is not None and jm.job_state else "not reachable"
        return teardown.tear_down(
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
        return teardown.tear_down(
            inp, rec, new, generation=rec.restore_generation + 1, path=None, reason=reason
        )
    return teardown.tear_down(
        inp,
        rec,
        new,
        generation=rec.restore_generation,
        path=rec.upgrade_savepoint_path,
        reason=reason,
    )
