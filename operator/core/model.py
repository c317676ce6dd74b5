"""The StreamJob spec as frozen dataclasses, parsed from the custom resource's ``spec`` dict.

Pure: :func:`parse_spec` applies the same defaults as ``crds/streamjob.yaml`` (an API server has
already applied them; the parser repeats them so tests and older objects read the same), and
raises :class:`SpecError` naming the field for what the schema cannot catch (a duration it cannot
read). Neighbours: :mod:`.validate` judges the parsed spec, :mod:`.render` and :mod:`.planner`
read it.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

GROUP = "streamjob.io"
VERSION = "v1alpha1"
PLURAL = "streamjobs"
KIND = "StreamJob"
API_VERSION = f"{GROUP}/{VERSION}"

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class SpecError(ValueError):
    """A spec value the schema let through but that cannot be used; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"spec.{field}: {message}")
        self.field = field
        self.detail = message


class JobState(enum.StrEnum):
    RUNNING = "running"
    SUSPENDED = "suspended"


class UpgradeMode(enum.StrEnum):
    STATELESS = "stateless"
    SAVEPOINT = "savepoint"
    LAST_STATE = "last-state"


class StateBackend(enum.StrEnum):
    HASHMAP = "hashmap"
    ROCKSDB = "rocksdb"


def parse_duration(value: str | float | int, *, field: str) -> float:
    """``"10s"``, ``"500ms"``, ``"5m"``, ``"1h"`` (or a number of seconds) -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise SpecError(field, f"{value!r} is not a duration: write e.g. 10s, 500ms, 5m or 1h")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobSpec:
    entrypoint: str
    args: tuple[str, ...] = ()
    parallelism: int = 1
    max_parallelism: int | None = None
    state: JobState = JobState.RUNNING
    upgrade_mode: UpgradeMode = UpgradeMode.LAST_STATE
    initial_savepoint_path: str | None = None
    allow_non_restored_state: bool = False
    savepoint_on_delete: bool = False
    savepoint_on_delete_timeout_s: float = 300.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class S3Spec:
    endpoint: str | None = None
    region: str | None = None
    path_style: bool = False
    credentials_secret: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckpointSpec:
    dir: str
    savepoint_dir: str | None = None
    interval_s: float = 10.0
    timeout_s: float = 600.0
    min_pause_s: float = 0.0
    retained: int = 1
    incremental: bool = False
    s3: S3Spec | None = None

    @property
    def savepoints(self) -> str:
        return self.savepoint_dir or f"{self.dir.rstrip('/')}/savepoints"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodSpecExtras:
    """``jobManager`` / ``taskManager``: resources and a pod template merged into the pod."""

    resources: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pod_template: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamJobSpec:
    image: str
    job: JobSpec
    checkpoints: CheckpointSpec
    image_pull_policy: str = "IfNotPresent"
    service_account: str | None = None
    state_backend: StateBackend = StateBackend.HASHMAP
    restart_strategy: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    job_manager: PodSpecExtras = dataclasses.field(default_factory=PodSpecExtras)
    task_manager: PodSpecExtras = dataclasses.field(default_factory=PodSpecExtras)
    savepoint_trigger_nonce: int | None = None
    restart_nonce: int | None = None
    #: the spec dict as given (for lastReconciledSpec and deploy keys)
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)


def _enum(kind: type[enum.StrEnum], value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise SpecError(field, f"{value!r} is not one of: {allowed}") from None


def _int(value: Any, field: str, *, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(field, f"{value!r} must be an integer >= {minimum}")
    return value


def _extras(raw: Mapping[str, Any] | None) -> PodSpecExtras:
    raw = raw or {}
    return PodSpecExtras(
        resources=dict(raw.get("resources") or {}), pod_template=dict(raw.get("podTemplate") or {})
    )


def _parse_job(job: Mapping[str, Any]) -> JobSpec:
    if not job.get("entrypoint"):
        raise SpecError("job.entrypoint", "is required: module:function or path.py:function")
    max_p = job.get("maxParallelism")
    return JobSpec(
        entrypoint=str(job["entrypoint"]),
        args=tuple(str(a) for a in job.get("args") or ()),
        parallelism=_int(job.get("parallelism", 1), "job.parallelism"),
        max_parallelism=None if max_p is None else _int(max_p, "job.maxParallelism"),
        state=_enum(JobState, job.get("state", "running"), "job.state"),
        upgrade_mode=_enum(UpgradeMode, job.get("upgradeMode", "last-state"), "job.upgradeMode"),
        initial_savepoint_path=job.get("initialSavepointPath") or None,
        allow_non_restored_state=bool(job.get("allowNonRestoredState", False)),
        savepoint_on_delete=bool(job.get("savepointOnDelete", False)),
        savepoint_on_delete_timeout_s=parse_duration(
            job.get("savepointOnDeleteTimeout", "5m"), field="job.savepointOnDeleteTimeout"
        ),
    )


def _parse_checkpoints(raw: Mapping[str, Any]) -> CheckpointSpec:
    if not raw.get("dir"):
        raise SpecError("checkpoints.dir", "is required: s3://bucket/prefix or file:///path")
    s3 = raw.get("s3")
    return CheckpointSpec(
        dir=str(raw["dir"]),
        savepoint_dir=raw.get("savepointDir") or None,
        interval_s=parse_duration(raw.get("interval", "10s"), field="checkpoints.interval"),
        timeout_s=parse_duration(raw.get("timeout", "10m"), field="checkpoints.timeout"),
        min_pause_s=parse_duration(raw.get("minPause", "0s"), field="checkpoints.minPause"),
        retained=_int(raw.get("retained", 1), "checkpoints.retained"),
        incremental=bool(raw.get("incremental", False)),
        s3=None
        if s3 is None
        else S3Spec(
            endpoint=s3.get("endpoint") or None,
            region=s3.get("region") or None,
            path_style=bool(s3.get("pathStyle", False)),
            credentials_secret=s3.get("credentialsSecret") or None,
        ),
    )


def parse_spec(spec: Mapping[str, Any]) -> StreamJobSpec:
    """Parse ``spec`` (defaults applied as in the CRD); raises :class:`SpecError`."""
    if not spec.get("image"):
        raise SpecError("image", "is required: the worker image, e.g. registry/streamjob:0.1")
    nonce = spec.get("savepointTriggerNonce")
    restart = spec.get("restartNonce")
    return StreamJobSpec(
        image=str(spec["image"]),
        job=_parse_job(spec.get("job") or {}),
        checkpoints=_parse_checkpoints(spec.get("checkpoints") or {}),
        image_pull_policy=str(spec.get("imagePullPolicy", "IfNotPresent")),
        service_account=spec.get("serviceAccount") or None,
        state_backend=_enum(StateBackend, spec.get("stateBackend", "hashmap"), "stateBackend"),
        restart_strategy=dict(spec.get("restartStrategy") or {}),
        job_manager=_extras(spec.get("jobManager")),
        task_manager=_extras(spec.get("taskManager")),
        savepoint_trigger_nonce=None if nonce is None else int(nonce),
        restart_nonce=None if restart is None else int(restart),
        raw=json.loads(json.dumps(dict(spec))),
    )


# -- what a change means -------------------------------------------------------------------------
#: fields a running job takes without new pods: each has its own flow (rescale, suspend/resume,
#: savepoint) or only matters later (deletion, the next upgrade)
_LIVE_JOB_FIELDS = (
    "parallelism",
    "state",
    "upgrade_mode",
    "savepoint_on_delete",
    "savepoint_on_delete_timeout_s",
)


def deploy_key(spec: StreamJobSpec) -> str:
    """A digest of everything whose change needs new pods (an upgrade by ``upgradeMode``).

    Computed on the parsed spec (defaults applied), so a default the CRD adds later does not
    look like a change. ``restartNonce`` is in, so changing it restarts the pods.
    """
    data = dataclasses.asdict(spec)
    data.pop("raw")
    data.pop("savepoint_trigger_nonce")
    for name in _LIVE_JOB_FIELDS:
        data["job"].pop(name)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_json(spec: Mapping[str, Any]) -> str:
    """The canonical JSON kept in ``status.reconciliation.lastReconciledSpec``."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def parse_spec_json(text: str | None) -> StreamJobSpec | None:
    """The spec kept as JSON in status, or None when there is none (or it no longer parses)."""
    if not text:
        return None
    try:
        return parse_spec(json.loads(text))
    except (ValueError, TypeError):
        return None
