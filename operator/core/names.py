"""Deterministic names, labels and the job id of a StreamJob's children.

Pod names are fixed by role and ordinal (``NAME-jobmanager``, ``NAME-taskmanager-3``), so a
create that answers 409 means "already there" and a second operator replica computes the same
names. ``job_id`` follows DESIGN.md section 6: derived from the StreamJob's uid and the restore
generation kept in its status, so it survives pod replacements and operator restarts, and changes
only when the state lineage is deliberately reset.
"""

from __future__ import annotations

import hashlib
import re

from streamjob.operator.core import model

LABEL_JOB = "streamjob.io/job"
LABEL_ROLE = "streamjob.io/role"
LABEL_ORDINAL = "streamjob.io/ordinal"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "streamjob-operator"
ROLE_JOBMANAGER = "jobmanager"
ROLE_TASKMANAGER = "taskmanager"

#: pod annotations: what the pod was rendered from (compared by the planner)
ANNOTATION_DEPLOY_KEY = "streamjob.io/deploy-key"
ANNOTATION_GENERATION = "streamjob.io/restore-generation"
ANNOTATION_JOB_ID = "streamjob.io/job-id"

FINALIZER = "streamjob.io/finalizer"

_TM = re.compile(r"^(?P<job>.+)-taskmanager-(?P<ordinal>[0-9]+)$")


def jobmanager_pod(job: str) -> str:
    return f"{job}-jobmanager"


def jobmanager_service(job: str) -> str:
    return f"{job}-jobmanager"


def taskmanager_pod(job: str, ordinal: int) -> str:
    return f"{job}-taskmanager-{ordinal}"


def config_map(job: str) -> str:
    return f"{job}-config"


def taskmanager_ordinal(job: str, pod_name: str) -> int | None:
    match = _TM.match(pod_name)
    if match is None or match.group("job") != job:
        return None
    return int(match.group("ordinal"))


def labels(job: str, role: str | None = None) -> dict[str, str]:
    found = {LABEL_JOB: job, LABEL_MANAGED_BY: MANAGED_BY}
    if role is not None:
        found[LABEL_ROLE] = role
    return found


def taskmanager_selector(job: str) -> str:
    """The serialized selector of ``status.taskManagers.labelSelector`` (scale subresource)."""
    return f"{LABEL_JOB}={job},{LABEL_ROLE}={ROLE_TASKMANAGER}"


def job_id(uid: str, restore_generation: int) -> str:
    """32 hex digits, like Flink's JobID: stable for (uid, generation)."""
    digest = hashlib.sha256(f"{model.API_VERSION}/{uid}/{restore_generation}".encode())
    return digest.hexdigest()[:32]


def jobmanager_url(job: str, namespace: str, *, port: int = 8081) -> str:
    """The JobManager's REST URL inside the cluster (through its Service)."""
    return f"http://{jobmanager_service(job)}.{namespace}.svc:{port}"
