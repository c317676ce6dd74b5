"""Scheduling (pure): which TaskManager runs which subtask.

One slot per TaskManager (Python has a GIL): slot sharing puts subtask *i* of every vertex on
the *i*-th TaskManager, so parallelism N needs N TaskManagers. TaskManagers are taken in a
stable order (by id) so a redeploy onto the same TaskManagers gives the same placement.
"""

from __future__ import annotations

from streamjob import errors
from streamjob.cluster.messages import task_key_text
from streamjob.runtime.graph import JobGraph


def slots_needed(graph: JobGraph) -> int:
    return max(v.parallelism for v in graph.vertices)


def place(graph: JobGraph, tm_ids: list[str]) -> dict[str, str]:
    needed = slots_needed(graph)
    if len(tm_ids) < needed:
        raise errors.StreamJobError(
            f"the job needs {needed} TaskManager slots, {len(tm_ids)} are registered"
        )
    ordered = sorted(tm_ids)[:needed]
    return {
        task_key_text(vertex.id, i): ordered[i]
        for vertex in graph.vertices
        for i in range(vertex.parallelism)
    }
