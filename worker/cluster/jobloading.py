"""Building a deployment's job in a TaskManager, and restoring its tasks.

Every process imports the job and builds the same graph (nothing but records and state is
pickled across processes); the JobManager sends the graph's fingerprint and the max
parallelism it adopted from the restored checkpoint, so both sides agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streamjob.api.environment import StreamEnvironment
from streamjob.checkpoint import layout
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.restoring import RestoreStats, restore_task
from streamjob.cluster.messages import Deployment
from streamjob.jobref import load_job
from streamjob.runtime.graph import JobGraph
from streamjob.runtime.task import Task
from streamjob.storage.base import CheckpointStorage


def build_environment(d: Deployment) -> tuple[StreamEnvironment, JobGraph]:
    job = load_job(d.job_ref)
    env = StreamEnvironment(parallelism=d.parallelism, max_parallelism=d.max_parallelism)
    env.job_parameters["args"] = list(d.job_args)
    env.config.job_config["args"] = list(d.job_args)
    job(env)
    env.config.batch_size = d.batch_size
    env.config.credits = d.credits
    env.config.state_backend = d.state_backend
    env.config.job_config.update(
        checkpointing=d.checkpointing,
        attempt_id=f"{d.epoch}-{d.attempt}",
        job_id=d.job_id,
    )
    env.config.attempt = d.attempt
    graph = env.build_graph(adopted_max_parallelism=d.adopted_max_parallelism)
    return env, graph


def parent_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[0]


def read_restore_metadata(
    path: str, storage_of: Callable[[str], CheckpointStorage]
) -> tuple[CheckpointMetadata, CheckpointStorage]:
    """The metadata at ``path`` (a chk-N or savepoint directory) and the storage its relative
    paths resolve against (the job's root for a checkpoint, the directory for a savepoint)."""
    directory = storage_of(path)
    meta = CheckpointMetadata.from_bytes(
        directory.get(layout.METADATA), location=directory.location_of(layout.METADATA)
    )
    root = storage_of(parent_url(path)) if meta.kind == "checkpoint" else directory
    return meta, root


def restore_source(
    d: Deployment, tasks: Sequence[Task], storage_of: Callable[[str], CheckpointStorage]
) -> tuple[int, dict[tuple[int, int], RestoreStats]]:
    """Restore this TaskManager's tasks; the restored checkpoint's id and each task's stats."""
    assert d.restore_path is not None
    meta, root = read_restore_metadata(d.restore_path, storage_of)
    stats = {(task.vertex_id, task.subtask_index): restore_task(task, meta, root) for task in tasks}
    return meta.checkpoint_id, stats
