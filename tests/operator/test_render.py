"""Rendering: the exact commands, environment, probes, names, labels and owners of the children.

Aspects covered: the JobManager and TaskManager command lines (the worker CLI contract), the
downward-API and S3 environment, probes, ``restartPolicy: Never``, owner references, labels and
the planner's annotations, the Service and ConfigMap, pod templates merged without overriding
what the operator renders, job ids stable per (uid, restore generation).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from streamjob.execution.restart import parse_restart_strategy
from streamjob.jobmanager.commands import add_subcommands
from streamjob.operator.core import model, names, render
from tests.operator.simulation import UID, spec_dict


def ctx(spec: dict[str, Any] | None = None, **kwargs: Any) -> render.RenderContext:
    return render.RenderContext(
        name="wordcount",
        namespace="jobs",
        uid=UID,
        spec=model.parse_spec(spec or spec_dict()),
        restore_generation=kwargs.pop("restore_generation", 0),
        **kwargs,
    )


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]
    }


def test_jobmanager_command_line() -> None:
    spec = spec_dict(maxParallelism=64, allowNonRestoredState=True, args=["--words", "3"])
    spec["stateBackend"] = "rocksdb"
    spec["restartStrategy"] = {"type": "fixed-delay", "attempts": 10, "delay": "200ms"}
    c = ctx(spec, from_savepoint="s3://b1/sp/savepoint-x-4")
    pod = render.build_jobmanager_pod(c)
    container = pod["spec"]["containers"][0]
    assert container["command"] + container["args"] == [
        "streamjob",
        "jobmanager",
        "jobs.wordcount:build",
        "--job-id",
        names.job_id(UID, 0),
        "--parallelism",
        "2",
        "--max-parallelism",
        "64",
        "--checkpoint-dir",
        "s3://checkpoints/wordcount",
        "--checkpoint-interval",
        "5",
        "--checkpoint-timeout",
        "600",
        "--retained",
        "1",
        "--state-backend",
        "rocksdb",
        "--no-incremental",
        "--restart-strategy",
        "fixed-delay:10:0.2",
        "--rest-host",
        "0.0.0.0",
        "--rest-port",
        "8081",
        "--stay",
        "--from-savepoint",
        "s3://b1/sp/savepoint-x-4",
        "--allow-non-restored-state",
        "--",
        "--words",
        "3",
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8081}


def test_jobmanager_takes_the_adopted_max_parallelism_and_omits_optional_flags() -> None:
    args = render.jobmanager_command(ctx(max_parallelism=128))
    assert args[args.index("--max-parallelism") + 1] == "128"
    assert "--from-savepoint" not in args and "--" not in args
    assert "--max-parallelism" not in render.jobmanager_command(ctx())
    assert "--restart-strategy" not in render.jobmanager_command(ctx())


def test_checkpoint_settings_reach_the_jobmanager() -> None:
    spec = spec_dict()
    spec["checkpoints"].update(
        timeout="2m", minPause="500ms", retained=3, incremental=True, interval="10s"
    )
    args = render.jobmanager_command(ctx(spec))
    flags = {"--checkpoint-timeout": "120", "--min-pause": "0.5", "--retained": "3"}
    for flag, value in flags.items():
        assert args[args.index(flag) + 1] == value
    assert "--no-incremental" not in args
    # and the JobManager's command line takes them
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(args[1 : args.index("--")] if "--" in args else args[1:])
    assert (parsed.checkpoint_timeout, parsed.min_pause, parsed.retained) == (120.0, 0.5, 3)
    assert parsed.incremental is True


def test_restart_strategies_as_the_jobmanager_takes_them() -> None:
    arg = render.restart_strategy_arg
    assert arg({"type": "none"}) == "none"
    assert arg({"type": "fixed-delay"}) == "fixed-delay:3:1"
    assert arg({"type": "failure-rate", "attempts": 4, "interval": "5m", "delay": "2s"}) == (
        "failure-rate:4:300:2"
    )
    assert arg({"type": "exponential-delay", "attempts": 9}) == "exponential-delay:9"
    assert arg({"type": "exponential-delay"}) is None
    for text in ("none", "fixed-delay:3:1", "failure-rate:4:300:2", "exponential-delay:9"):
        parse_restart_strategy(text)  # the JobManager's own parser takes every one


def test_taskmanager_command_line_and_pod() -> None:
    pod = render.build_taskmanager_pod(ctx(), 3)
    container = pod["spec"]["containers"][0]
    assert container["command"] + container["args"] == [
        "streamjob",
        "taskmanager",
        "--jobmanager",
        "http://wordcount-jobmanager:8081",
        "--data-port",
        "6121",
        "--rest-port",
        "8082",
        "--tm-id",
        "wordcount-taskmanager-3",
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8082}
    assert pod["metadata"]["name"] == "wordcount-taskmanager-3"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"] == {
        "streamjob.io/job": "wordcount",
        "streamjob.io/role": "taskmanager",
        "streamjob.io/ordinal": "3",
        "app.kubernetes.io/managed-by": "streamjob-operator",
    }
    assert pod["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "streamjob.io/v1alpha1",
            "kind": "StreamJob",
            "name": "wordcount",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_environment_downward_api_and_s3_from_a_secret() -> None:
    spec = spec_dict()
    spec["checkpoints"]["s3"] = {
        "endpoint": "http://minio:9000",
        "region": "eu-1",
        "pathStyle": True,
        "credentialsSecret": "s3-creds",
    }
    env = env_of(render.build_taskmanager_pod(ctx(spec), 0))
    assert env["PYTHONSAFEPATH"] == "1"
    assert env["STREAMJOB_POD_UID"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert env["STREAMJOB_POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["AWS_REGION"] == "eu-1"
    assert env["STREAMJOB_S3_PATH_STYLE"] == "true"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert "AWS_REGION" not in env_of(render.build_taskmanager_pod(ctx(), 0))


def test_pods_carry_what_the_planner_compares() -> None:
    c = ctx(restore_generation=2)
    annotations = render.build_jobmanager_pod(c)["metadata"]["annotations"]
    assert annotations == {
        "streamjob.io/deploy-key": model.deploy_key(c.spec),
        "streamjob.io/restore-generation": "2",
        "streamjob.io/job-id": names.job_id(UID, 2),
    }


def test_service_and_config_map() -> None:
    c = ctx()
    service = render.build_service(c)
    assert service["metadata"]["name"] == "wordcount-jobmanager"
    assert service["spec"]["selector"] == {
        "streamjob.io/job": "wordcount",
        "streamjob.io/role": "jobmanager",
    }
    assert service["spec"]["ports"][0]["port"] == 8081
    config = render.build_config_map(c)
    assert config["metadata"]["name"] == "wordcount-config"
    job = json.loads(config["data"]["job.json"])
    assert job["jobId"] == c.job_id
    assert job["checkpoints"]["savepointDir"] == "s3://checkpoints/wordcount/savepoints"


def test_pod_template_is_merged_without_overriding_the_operator() -> None:
    spec = spec_dict()
    spec["taskManager"] = {
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "podTemplate": {
            "metadata": {"labels": {"team": "data", "streamjob.io/role": "hijack"}},
            "spec": {
                "nodeSelector": {"pool": "stream"},
                "restartPolicy": "Always",
                "containers": [
                    {"name": "taskmanager", "env": [{"name": "EXTRA", "value": "1"}]},
                    {"name": "sidecar", "image": "busybox"},
                ],
            },
        },
    }
    pod = render.build_taskmanager_pod(ctx(spec), 0)
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["metadata"]["labels"]["streamjob.io/role"] == "taskmanager"
    assert pod["spec"]["nodeSelector"] == {"pool": "stream"}
    assert pod["spec"]["restartPolicy"] == "Never"
    main, sidecar = pod["spec"]["containers"]
    assert main["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert {"name": "EXTRA", "value": "1"} in main["env"]
    assert main["command"] == ["streamjob", "taskmanager"]
    assert sidecar["name"] == "sidecar"


def test_job_id_is_stable_per_uid_and_generation() -> None:
    assert names.job_id(UID, 0) == names.job_id(UID, 0)
    assert names.job_id(UID, 0) != names.job_id(UID, 1)
    assert names.job_id(UID, 0) != names.job_id("another-uid", 0)
    assert len(names.job_id(UID, 0)) == 32


def test_deploy_key_ignores_live_fields_and_defaults() -> None:
    base = model.parse_spec(spec_dict())
    same = [
        spec_dict(parallelism=5),
        spec_dict(state="suspended"),
        spec_dict(upgradeMode="savepoint"),
        {**spec_dict(), "savepointTriggerNonce": 3},
        {**spec_dict(), "stateBackend": "hashmap"},  # the default, written out
    ]
    for spec in same:
        assert model.deploy_key(model.parse_spec(spec)) == model.deploy_key(base), spec
    changed = [{**spec_dict(), "image": "other:2"}, {**spec_dict(), "restartNonce": 1}]
    for spec in changed:
        assert model.deploy_key(model.parse_spec(spec)) != model.deploy_key(base), spec


def test_the_worker_cli_parses_the_rendered_commands() -> None:
    from streamjob.cli import _parser

    c = ctx(spec_dict(maxParallelism=64), from_savepoint="s3://b1/sp/savepoint-x-4")
    jm = _parser().parse_args(render.jobmanager_command(c)[1:])
    assert (jm.job, jm.parallelism, jm.max_parallelism) == ("jobs.wordcount:build", 2, 64)
    assert (jm.job_id, jm.checkpoint_dir) == (c.job_id, "s3://checkpoints/wordcount")
    assert (jm.checkpoint_interval, jm.from_savepoint) == (5.0, "s3://b1/sp/savepoint-x-4")
    assert (jm.rest_host, jm.rest_port, jm.stay) == ("0.0.0.0", 8081, True)
    tm = _parser().parse_args(render.taskmanager_command(c, 1)[1:])
    assert tm.jobmanager == "http://wordcount-jobmanager:8081"
    assert (tm.data_port, tm.rest_port, tm.tm_id) == (6121, 8082, "wordcount-taskmanager-1")


def test_the_worker_cli_parses_job_arguments_after_the_options() -> None:
    from streamjob.cli import _parser
    from streamjob.jobmanager.commands import split_job_args

    c = ctx(spec_dict(args=["--words", "3"]))
    own, job_args = split_job_args(render.jobmanager_command(c)[1:])
    jm = _parser().parse_args(own)
    assert job_args == ["--words", "3"]
    assert jm.command == "jobmanager"
    assert "--words" not in own
