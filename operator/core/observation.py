"""What one reconcile cycle observed, and what the StreamJob's status had recorded before it.

Plain frozen data, built by the shell (:mod:`streamjob.operator.observe`) from the Kubernetes API
and the JobManager's REST answers, and read by the pure :mod:`.planner` and :mod:`.status`.
:class:`Recorded` is the operator's own bookkeeping read back from ``status`` (the lineage: job
id, restore generation, max parallelism; the last reconciled spec; a savepoint or rescale in
flight), so a restarted operator continues where the last one stopped.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any

from streamjob.jobmanager import dto
from streamjob.operator.core import model, names


class PodPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodInfo:
    name: str
    uid: str
    role: str
    ordinal: int | None
    phase: PodPhase
    ready: bool = False
    deleting: bool = False
    ip: str | None = None
    deploy_key: str | None = None
    restore_generation: int | None = None

    @property
    def terminated(self) -> bool:
        """The pod's process has ended (``restartPolicy: Never``: it will not run again)."""
        return self.phase in (PodPhase.FAILED, PodPhase.SUCCEEDED)

    @property
    def healthy(self) -> bool:
        return not self.terminated and not self.deleting


def pod_info(pod: Mapping[str, Any]) -> PodInfo:
    """Read the fields the planner needs from a Pod manifest (as the API returns it)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    job = labels.get(names.LABEL_JOB, "")
    role = labels.get(names.LABEL_ROLE, "")
    try:
        phase = PodPhase(status.get("phase") or "Pending")
    except ValueError:
        phase = PodPhase.UNKNOWN
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    generation = annotations.get(names.ANNOTATION_GENERATION)
    return PodInfo(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        role=role,
        ordinal=names.taskmanager_ordinal(job, meta.get("name", ""))
        if role == names.ROLE_TASKMANAGER
        else None,
        phase=phase,
        ready=ready and phase is PodPhase.RUNNING,
        deleting=bool(meta.get("deletionTimestamp")),
        ip=status.get("podIP"),
        deploy_key=annotations.get(names.ANNOTATION_DEPLOY_KEY),
        restore_generation=int(generation) if generation is not None else None,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckpointView:
    id: int
    path: str | None
    time_ms: int
    size_bytes: int | None = None
    duration_ms: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobManagerView:
    """The JobManager's answers about this job (``job`` None: it does not know the job yet)."""

    reachable: bool
    error: str | None = None
    job: dto.JobDetails | None = None
    last_checkpoint: CheckpointView | None = None
    last_savepoint: CheckpointView | None = None
    #: the status of ``status.savepoint.triggerId`` when one is in flight
    savepoint: dto.SavepointStatus | None = None

    @property
    def job_state(self) -> dto.JobState | None:
        return None if self.job is None else self.job.state

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.state is dto.JobState.RUNNING


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecretView:
    name: str
    exists: bool
    keys: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Observation:
    name: str
    namespace: str
    uid: str
    generation: int
    now: datetime.datetime
    pods: tuple[PodInfo, ...] = ()
    service_exists: bool = False
    config_map_data: Mapping[str, str] | None = None
    secret: SecretView | None = None
    jobmanager: JobManagerView | None = None
    #: pods seen by the previous cycle that are gone now, as (name, uid)
    vanished: tuple[tuple[str, str], ...] = ()

    @property
    def jobmanager_pod(self) -> PodInfo | None:
        return next((p for p in self.pods if p.role == names.ROLE_JOBMANAGER), None)

    @property
    def taskmanagers(self) -> tuple[PodInfo, ...]:
        found = [p for p in self.pods if p.role == names.ROLE_TASKMANAGER and p.ordinal is not None]
        return tuple(sorted(found, key=lambda p: p.ordinal or 0))


# -- what status had recorded --------------------------------------------------------------------
class SavepointReason(enum.StrEnum):
    MANUAL = "MANUAL"
    UPGRADE = "UPGRADE"
    SUSPEND = "SUSPEND"
    DELETE = "DELETE"


class SavepointState(enum.StrEnum):
    TRIGGERING = "TRIGGERING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def in_flight(self) -> bool:
        return self in (SavepointState.TRIGGERING, SavepointState.IN_PROGRESS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SavepointRecord:
    reason: SavepointReason
    state: SavepointState
    stop: bool
    trigger_time: datetime.datetime
    trigger_id: str | None = None
    trigger_nonce: int | None = None
    location: str | None = None
    error: str | None = None


class RescalePhase(enum.StrEnum):
    #: scale up: creating the new TaskManager pods, waiting until they are ready
    PODS = "PODS"
    #: the JobManager was asked to rescale; waiting until the job RUNNING at the target
    REQUESTED = "REQUESTED"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RescaleRecord:
    source: int
    target: int
    phase: RescalePhase
    start_time: datetime.datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recorded:
    """The operator's bookkeeping in ``status`` (what survives an operator restart)."""

    reconciled_raw: Mapping[str, Any] | None = None
    stable_json: str | None = None
    restore_generation: int = 0
    job_id: str | None = None
    max_parallelism: int | None = None
    upgrade_savepoint_path: str | None = None
    savepoint: SavepointRecord | None = None
    rescale: RescaleRecord | None = None
    last_rescale_time: datetime.datetime | None = None

    @property
    def reconciled(self) -> model.StreamJobSpec | None:
        if self.reconciled_raw is None:
            return None
        try:
            return model.parse_spec(self.reconciled_raw)
        except (model.SpecError, TypeError):
            return None
