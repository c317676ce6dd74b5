"""The job's lineage in a plan: job id, restore generation, the savepoint a new job starts from.

DESIGN.md section 6: ``job_id`` is derived from the StreamJob's uid and the restore generation
kept in status; the generation is bumped only when the state lineage is deliberately reset (a
stateless or savepoint upgrade, an explicit restore). :func:`adopt` keeps the recorded lineage
consistent at the start of every plan, :func:`with_generation` moves it, and :func:`context` is
what the children are rendered from under it. Pure.
"""

from __future__ import annotations

import dataclasses

from streamjob.operator.core import model, names, render
from streamjob.operator.core.observation import Recorded
from streamjob.operator.core.plan import PlanInput


def adopt(inp: PlanInput) -> Recorded:
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


def with_generation(
    inp: PlanInput, rec: Recorded, *, generation: int, path: str | None
) -> Recorded:
    """The lineage at ``generation``, whose first start restores ``path`` (if no checkpoint)."""
    return dataclasses.replace(
        rec,
        restore_generation=generation,
        job_id=names.job_id(inp.obs.uid, generation),
        upgrade_savepoint_path=path,
    )


def explicit_restore(old: model.StreamJobSpec, new: model.StreamJobSpec) -> str | None:
    """A new ``initialSavepointPath``: the user asks to restore it (a new lineage)."""
    path = new.job.initial_savepoint_path
    return path if path and path != old.job.initial_savepoint_path else None


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
