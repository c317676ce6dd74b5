"""The Helm chart: it lints, renders valid Kubernetes objects, and carries the one CRD.

Aspects covered: ``helm lint`` cluster-wide and namespaced; every rendered object (both modes,
the CRD included) validates strictly against the Kubernetes schemas; the chart's CRD is
byte-for-byte ``crds/streamjob.yaml``; the operator Deployment: one replica, ``Recreate``,
``--standalone``, the liveness probe on kopf's endpoint, non-root, the watched namespaces as flags
and the log level; the CRD upgrade step is documented (Helm never upgrades CRDs).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import CHART, ROOT

Render = Callable[..., list[dict[str, Any]]]
NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["clusterwide", "namespaced"])
def test_helm_lint_passes(helm: Path, values: dict[str, Any]) -> None:
    command = [helm, "lint", "--strict", CHART]
    for key, value in values.items():
        command += ["--set", f"{key}={{{','.join(value)}}}"]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["clusterwide", "namespaced"])
def test_rendered_objects_are_valid_kubernetes(
    render: Render, kube_validate: Callable[[dict[str, Any]], list[str]], values: dict[str, Any]
) -> None:
    docs = render(**values)
    kinds = sorted(doc["kind"] for doc in docs)
    assert "CustomResourceDefinition" in kinds and "Deployment" in kinds
    errors = [error for doc in docs for error in kube_validate(doc)]
    assert errors == []


def test_validation_catches_a_broken_manifest(
    render: Render, kube_validate: Callable[[dict[str, Any]], list[str]]
) -> None:
    """The schema check is not vacuous: a typo in the Deployment is reported."""
    (deployment,) = by_kind(render(), "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 1}}
    assert kube_validate(broken) != []


def test_chart_crd_is_the_repository_crd() -> None:
    source = (ROOT / "crds" / "streamjob.yaml").read_text()
    copy = (CHART / "crds" / "streamjob.yaml").read_text()
    assert copy == source, (
        "charts/streamjob/crds/streamjob.yaml drifted from crds/streamjob.yaml: "
        "cp crds/streamjob.yaml charts/streamjob/crds/streamjob.yaml"
    )


def test_operator_runs_one_standalone_replica_recreated(render: Render) -> None:
    (deployment,) = by_kind(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = operator_container(render())
    assert container["command"] == ["streamjob"]
    assert "operator" in container["args"] and "--standalone" in container["args"]
    assert not any(arg.startswith("--namespace") for arg in container["args"])


def test_liveness_probe_points_at_kopfs_endpoint(render: Render) -> None:
    container = operator_container(render())
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["ports"] == [{"name": "health", "containerPort": 8080}]
    probe = container["livenessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": "health"}


def test_values_reach_the_command_line(render: Render) -> None:
    docs = render(**NAMESPACED, **{"operator.logLevel": "DEBUG", "image.tag": "dev"})
    container = operator_container(docs)
    args = container["args"]
    assert args.index("--log-level=DEBUG") < args.index("operator")  # a top-level flag
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert container["image"] == "streamjob:dev"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PYTHONSAFEPATH"] == "1"


def test_operator_is_not_root(render: Render) -> None:
    (deployment,) = by_kind(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = operator_container(render())
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_service_account_is_bound(render: Render) -> None:
    docs = render()
    (account,) = by_kind(docs, "ServiceAccount")
    (deployment,) = by_kind(docs, "Deployment")
    name = account["metadata"]["name"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
    for binding in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name, "namespace": "streamjob-system"}
        ]


def test_crd_upgrade_step_is_documented() -> None:
    step = "kubectl apply --server-side -f charts/streamjob/crds/streamjob.yaml"
    assert step in (CHART / "README.md").read_text()
    assert step in (CHART / "templates" / "NOTES.txt").read_text()
    assert step in (ROOT / "examples" / "README.md").read_text()
