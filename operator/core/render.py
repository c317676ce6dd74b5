"""Pure manifests of a StreamJob's children: JobManager pod, Service, TaskManager pods, ConfigMap.

``build_*`` functions return plain dicts (dask-kubernetes style); the commands the pods run are
assembled here and nowhere else (:func:`jobmanager_command`, :func:`taskmanager_command`), so a
change of the worker CLI is one edit. Every child carries an owner reference to the StreamJob and
the labels ``streamjob.io/job`` and ``streamjob.io/role``; pods carry the annotations the planner
compares (deploy key, restore generation, job id).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from streamjob.operator.core import model, names

# -- the worker CLI contract (one place) ---------------------------------------------------------
PROGRAM = "streamjob"
JOBMANAGER_REST_PORT = 8081
TASKMANAGER_DATA_PORT = 6121
TASKMANAGER_REST_PORT = 8082
JOBMANAGER_READY_PATH = "/readyz"
HEALTH_PATH = "/healthz"
ENV_POD_UID = "STREAMJOB_POD_UID"
ENV_POD_IP = "STREAMJOB_POD_IP"
ENV_S3_PATH_STYLE = "STREAMJOB_S3_PATH_STYLE"
CONFIG_MOUNT = "/etc/streamjob"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenderContext:
    """What the manifests are rendered from: the reconciled spec and the job's lineage."""

    name: str
    namespace: str
    uid: str
    spec: model.StreamJobSpec
    restore_generation: int
    #: the max parallelism adopted from the job's first run (status), when the spec has none
    max_parallelism: int | None = None
    from_savepoint: str | None = None
    #: the parallelism the JobManager starts with (the reconciled one)
    parallelism: int | None = None

    @property
    def job_id(self) -> str:
        return names.job_id(self.uid, self.restore_generation)

    @property
    def deploy_key(self) -> str:
        return model.deploy_key(self.spec)


def _seconds(value: float) -> str:
    return f"{value:g}"


def jobmanager_command(ctx: RenderContext) -> list[str]:
    spec = ctx.spec
    parallelism = ctx.parallelism or spec.job.parallelism
    max_p = spec.job.max_parallelism or ctx.max_parallelism
    args = [PROGRAM, "jobmanager", spec.job.entrypoint, "--job-id", ctx.job_id]
    args += ["--parallelism", str(parallelism)]
    if max_p is not None:
        args += ["--max-parallelism", str(max_p)]
    args += ["--checkpoint-dir", spec.checkpoints.dir]
    checkpoints = spec.checkpoints
    args += ["--checkpoint-interval", _seconds(checkpoints.interval_s)]
    args += ["--checkpoint-timeout", _seconds(checkpoints.timeout_s)]
    if checkpoints.min_pause_s:
        args += ["--min-pause", _seconds(checkpoints.min_pause_s)]
    args += ["--retained", str(checkpoints.retained)]
    args += ["--state-backend", spec.state_backend.value]
    if not checkpoints.incremental:
        args.append("--no-incremental")
    restart = restart_strategy_arg(spec.restart_strategy)
    if restart is not None:
        args += ["--restart-strategy", restart]
    args += ["--rest-host", "0.0.0.0", "--rest-port", str(JOBMANAGER_REST_PORT)]  # noqa: S104
    # keep answering REST after the job ended (FINISHED, or stopped with a savepoint): the
    # operator reads the outcome, and a JobManager pod that exits would be replaced and rerun
    args.append("--stay")
    if ctx.from_savepoint:
        args += ["--from-savepoint", ctx.from_savepoint]
    if spec.job.allow_non_restored_state:
        args.append("--allow-non-restored-state")
    if spec.job.args:
        args += ["--", *spec.job.args]
    return args


def restart_strategy_arg(strategy: Mapping[str, Any]) -> str | None:
    """``spec.restartStrategy`` as the JobManager's ``--restart-strategy`` (None: its default,
    exponential-delay with Flink's timings, which the command line does not change)."""
    kind = strategy.get("type")
    attempts = strategy.get("attempts")
    if kind == "none":
        return "none"
    if kind == "fixed-delay":
        delay = model.parse_duration(strategy.get("delay", "1s"), field="restartStrategy.delay")
        return f"fixed-delay:{attempts or 3}:{_seconds(delay)}"
    if kind == "failure-rate":
        interval = model.parse_duration(
            strategy.get("interval", "60s"), field="restartStrategy.interval"
        )
        delay = model.parse_duration(strategy.get("delay", "1s"), field="restartStrategy.delay")
        return f"failure-rate:{attempts or 1}:{_seconds(interval)}:{_seconds(delay)}"
    if kind == "exponential-delay" and attempts:
        return f"exponential-delay:{attempts}"
    return None


def taskmanager_command(ctx: RenderContext, ordinal: int) -> list[str]:
    service = names.jobmanager_service(ctx.name)
    return [
        PROGRAM,
        "taskmanager",
        "--jobmanager",
        f"http://{service}:{JOBMANAGER_REST_PORT}",
        "--data-port",
        str(TASKMANAGER_DATA_PORT),
        "--rest-port",
        str(TASKMANAGER_REST_PORT),
        "--tm-id",
        names.taskmanager_pod(ctx.name, ordinal),
    ]


def environment(spec: model.StreamJobSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "PYTHONSAFEPATH", "value": "1"},
        {"name": ENV_POD_UID, "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": ENV_POD_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    s3 = spec.checkpoints.s3
    if s3 is not None:
        if s3.endpoint:
            env.append({"name": "AWS_ENDPOINT_URL", "value": s3.endpoint})
        if s3.region:
            env.append({"name": "AWS_REGION", "value": s3.region})
        env.append({"name": ENV_S3_PATH_STYLE, "value": "true" if s3.path_style else "false"})
        if s3.credentials_secret:
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                ref = {"name": s3.credentials_secret, "key": key}
                env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return env


def owner_reference(ctx: RenderContext) -> dict[str, Any]:
    return {
        "apiVersion": model.API_VERSION,
        "kind": model.KIND,
        "name": ctx.name,
        "uid": ctx.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(ctx: RenderContext, name: str, role: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": names.labels(ctx.name, role),
        "ownerReferences": [owner_reference(ctx)],
    }


def _probe(path: str, port: int, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def _pod(
    ctx: RenderContext,
    *,
    name: str,
    role: str,
    container: dict[str, Any],
    extras: model.PodSpecExtras,
) -> dict[str, Any]:
    meta = _metadata(ctx, name, role)
    meta["annotations"] = {
        names.ANNOTATION_DEPLOY_KEY: ctx.deploy_key,
        names.ANNOTATION_GENERATION: str(ctx.restore_generation),
        names.ANNOTATION_JOB_ID: ctx.job_id,
    }
    container = {
        **container,
        "image": ctx.spec.image,
        "imagePullPolicy": ctx.spec.image_pull_policy,
        "env": environment(ctx.spec),
    }
    if extras.resources:
        container["resources"] = copy.deepcopy(dict(extras.resources))
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if ctx.spec.service_account:
        spec["serviceAccountName"] = ctx.spec.service_account
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    return merge_pod_template(pod, extras.pod_template)


def build_jobmanager_pod(ctx: RenderContext) -> dict[str, Any]:
    command = jobmanager_command(ctx)
    container = {
        "name": names.ROLE_JOBMANAGER,
        "command": command[:2],
        "args": command[2:],
        "ports": [{"name": "rest", "containerPort": JOBMANAGER_REST_PORT}],
        "readinessProbe": _probe(JOBMANAGER_READY_PATH, JOBMANAGER_REST_PORT, period=2, failures=3),
        "livenessProbe": _probe(HEALTH_PATH, JOBMANAGER_REST_PORT, period=10, failures=3),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
    }
    pod = _pod(
        ctx,
        name=names.jobmanager_pod(ctx.name),
        role=names.ROLE_JOBMANAGER,
        container=container,
        extras=ctx.spec.job_manager,
    )
    volume = {"name": "config", "configMap": {"name": names.config_map(ctx.name)}}
    pod["spec"].setdefault("volumes", []).append(volume)
    return pod


def build_taskmanager_pod(ctx: RenderContext, ordinal: int) -> dict[str, Any]:
    command = taskmanager_command(ctx, ordinal)
    container = {
        "name": names.ROLE_TASKMANAGER,
        "command": command[:2],
        "args": command[2:],
        "ports": [
            {"name": "data", "containerPort": TASKMANAGER_DATA_PORT},
            {"name": "rest", "containerPort": TASKMANAGER_REST_PORT},
        ],
        "readinessProbe": _probe(HEALTH_PATH, TASKMANAGER_REST_PORT, period=2, failures=3),
        "livenessProbe": _probe(HEALTH_PATH, TASKMANAGER_REST_PORT, period=10, failures=3),
    }
    pod = _pod(
        ctx,
        name=names.taskmanager_pod(ctx.name, ordinal),
        role=names.ROLE_TASKMANAGER,
        container=container,
        extras=ctx.spec.task_manager,
    )
    pod["metadata"]["labels"][names.LABEL_ORDINAL] = str(ordinal)
    return pod


def build_service(ctx: RenderContext) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(ctx, names.jobmanager_service(ctx.name), names.ROLE_JOBMANAGER),
        "spec": {
            "selector": {
                names.LABEL_JOB: ctx.name,
                names.LABEL_ROLE: names.ROLE_JOBMANAGER,
            },
            "ports": [
                {"name": "rest", "port": JOBMANAGER_REST_PORT, "targetPort": JOBMANAGER_REST_PORT}
            ],
        },
    }


def config_data(ctx: RenderContext) -> dict[str, str]:
    """The job configuration as the JobManager pod sees it under /etc/streamjob."""
    spec = ctx.spec
    checkpoints = spec.checkpoints
    config = {
        "jobId": ctx.job_id,
        "restoreGeneration": ctx.restore_generation,
        "entrypoint": spec.job.entrypoint,
        "args": list(spec.job.args),
        "parallelism": ctx.parallelism or spec.job.parallelism,
        "maxParallelism": spec.job.max_parallelism or ctx.max_parallelism,
        "fromSavepoint": ctx.from_savepoint,
        "allowNonRestoredState": spec.job.allow_non_restored_state,
        "stateBackend": spec.state_backend.value,
        "checkpoints": {
            "dir": checkpoints.dir,
            "savepointDir": checkpoints.savepoints,
            "intervalSeconds": checkpoints.interval_s,
            "timeoutSeconds": checkpoints.timeout_s,
            "minPauseSeconds": checkpoints.min_pause_s,
            "retained": checkpoints.retained,
            "incremental": checkpoints.incremental,
        },
        "restartStrategy": dict(spec.restart_strategy),
    }
    return {"job.json": json.dumps(config, indent=2, sort_keys=True), "job-id": ctx.job_id}


def build_config_map(ctx: RenderContext) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(ctx, names.config_map(ctx.name), None),
        "data": config_data(ctx),
    }


# -- pod templates -------------------------------------------------------------------------------
def merge_pod_template(pod: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a user's ``podTemplate`` into a rendered pod; what the operator renders wins.

    Labels and annotations are added (ours override); spec fields the operator does not set are
    taken (nodeSelector, tolerations, volumes are appended); a container with the rendered
    container's name contributes env, volumeMounts and unset fields; other containers are added.
    """
    if not template:
        return pod
    merged = copy.deepcopy(pod)
    meta = template.get("metadata") or {}
    for key in ("labels", "annotations"):
        if meta.get(key):
            merged["metadata"][key] = {**meta[key], **merged["metadata"].get(key, {})}
    ours = merged["spec"]
    for key, value in (template.get("spec") or {}).items():
        if key == "containers":
            _merge_containers(ours, value)
        elif key == "volumes":
            ours["volumes"] = [*ours.get("volumes", []), *copy.deepcopy(value)]
        elif key not in ours:
            ours[key] = copy.deepcopy(value)
    return merged


def _merge_containers(spec: dict[str, Any], extra: list[dict[str, Any]]) -> None:
    main = spec["containers"][0]
    for container in extra:
        if container.get("name") != main["name"]:
            spec["containers"].append(copy.deepcopy(container))
            continue
        for key, value in container.items():
            if key in ("env", "volumeMounts", "ports"):
                main[key] = [*main.get(key, []), *copy.deepcopy(value)]
            elif key not in main:
                main[key] = copy.deepcopy(value)
