"""Restoring a task from a checkpoint or savepoint, at any parallelism.

Each new subtask owns ``key_group_range(i)`` under the new parallelism and reads, from every
old handle that intersects it, only the byte range of its own key groups (one ranged GET per
handle: key groups are stored in order). Native (incremental) handles are downloaded whole and
rebuilt into the backend's database (:mod:`streamjob.checkpoint.incremental`); their operator
sections (timers...) are canonical and read like the other handles. Operator list state is
split round-robin or given whole (union). Everything happens before the operators open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamjob import errors
from streamjob.checkpoint import incremental
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import (
    CheckpointMetadata,
    IncrementalKeyedStateHandle,
    KeyedStateHandle,
    OperatorMetadata,
)
from streamjob.checkpoint.operator_state import restore_keyed_blob, restore_operator_state
from streamjob.runtime.graph import JobGraph
from streamjob.runtime.operators.base import StreamOperator
from streamjob.runtime.task import Task
from streamjob.storage.base import CheckpointStorage


@dataclass
class RestoreStats:
    bytes_read: int = 0
    key_groups: int = 0
    requests: int = 0
    #: uid -> the native handle a backend adopted whole, to seed its incremental uploads
    native_bases: dict[str, IncrementalKeyedStateHandle] = field(default_factory=dict)


def check_restorable(
    meta: CheckpointMetadata, graph: JobGraph, *, allow_non_restored_state: bool
) -> None:
    """Every operator with state in ``meta`` must exist in the job, by uid."""
    uids = {node.uid for node in graph.nodes.values()}
    missing = [op for op in meta.operators if op.uid not in uids and _has_state(op)]
    if missing and not allow_non_restored_state:
        names = ", ".join(f"{op.uid!r} ({op.name})" for op in missing)
        raise errors.RestoreError(
            f"checkpoint {meta.checkpoint_id} has state for operators that are not in this job: "
            f"{names}. Give the operators their old uid(s), or start with "
            "--allow-non-restored-state to drop that state"
        )
    for node in graph.nodes.values():
        old = meta.operator(node.uid)
        if old is not None and old.has_keyed_state and old.max_parallelism != node.max_parallelism:
            raise errors.RestoreError(
                f"operator {node.uid!r}: the checkpoint was taken with max parallelism "
                f"{old.max_parallelism}, the job now has {node.max_parallelism}; keyed state "
                "can only be restored with the same max parallelism (remove the explicit "
                "setting to adopt the checkpoint's)"
            )


def _has_state(op: OperatorMetadata) -> bool:
    return op.has_keyed_state or any(e.all_elements() for e in op.operator_state.values())


def max_parallelism_of(meta: CheckpointMetadata) -> dict[str, int]:
    return {op.uid: op.max_parallelism for op in meta.operators if op.has_keyed_state}


def restore_task(
    task: Task,
    meta: CheckpointMetadata,
    storage: CheckpointStorage,
    faults: FaultInjector | None = None,
) -> RestoreStats:
    stats = RestoreStats()
    for op in task.operators:
        old = meta.operator(op.ctx.uid)
        if old is None:
            continue
        if faults is not None:
            faults.hit("during_restore", task=task.name, checkpoint_id=meta.checkpoint_id)
        if op.is_keyed:
            _restore_keyed(op, old, storage, stats)
        restore_operator_state(
            op, _operator_state_for(old, op.ctx.subtask_index, op.ctx.parallelism)
        )
    return stats


def _restore_keyed(
    op: StreamOperator, old: OperatorMetadata, storage: CheckpointStorage, stats: RestoreStats
) -> None:
    kg_range = op.ctx.key_group_range
    assert kg_range is not None
    adopted, native_bytes, native_files = incremental.restore(op, old, storage)
    if adopted is not None:
        stats.native_bases[old.uid] = adopted
    stats.bytes_read += native_bytes
    stats.requests += native_files
    handles: list[KeyedStateHandle] = list(old.keyed_handles)
    handles.extend(h.sections for h in old.incremental_handles if h.sections is not None)
    for handle in handles:
        wanted = sorted(kg for kg in handle.offsets if kg in kg_range)
        if not wanted:
            continue
        first = handle.offsets[wanted[0]][0]
        last = max(handle.offsets[kg][0] + handle.offsets[kg][1] for kg in wanted)
        try:
            data = storage.get(handle.path, start=first, end=last)
        except Exception as exc:
            raise errors.CheckpointCorruptError(
                f"cannot read state of operator {old.uid!r} from "
                f"{storage.location_of(handle.path)}: {exc}"
            ) from exc
        if len(data) != last - first:
            raise errors.CheckpointCorruptError(
                f"{storage.location_of(handle.path)} is shorter than its metadata says "
                f"(wanted bytes {first}..{last}, got {len(data)})"
            )
        stats.bytes_read += len(data)
        stats.requests += 1
        view = memoryview(data)  # each key group's blob is decoded in place, not copied
        for kg in wanted:
            offset, length = handle.offsets[kg]
            restore_keyed_blob(op, kg, view[offset - first : offset - first + length])
            stats.key_groups += 1


def _operator_state_for(
    old: OperatorMetadata, subtask: int, parallelism: int
) -> dict[str, list[Any]]:
    state: dict[str, list[Any]] = {}
    for name, entry in old.operator_state.items():
        elements = entry.all_elements()
        state[name] = (
            elements if entry.mode == "union" else _round_robin(elements, subtask, parallelism)
        )
    return state


def _round_robin(elements: Iterable[Any], subtask: int, parallelism: int) -> list[Any]:
    return [e for i, e in enumerate(elements) if i % parallelism == subtask]
