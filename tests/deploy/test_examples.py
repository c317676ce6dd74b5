"""The example manifests: accepted by the CRD as an API server would, and runnable by the image.

Aspects covered: every StreamJob in ``examples/k8s`` passes the CRD schema (defaults, pruning,
validation and the CEL stand-ins of ``tests/operator/schema.py``) with nothing pruned (a typo would
vanish silently on a cluster), parses into the operator's model, names a job file the image holds
with the function it names, and points its checkpoints at the S3 store and Secret of
``seaweedfs.yaml``; the other example objects validate against the Kubernetes schemas.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamjob.operator.core import model
from tests.deploy.conftest import ROOT
from tests.operator import schema
from tests.operator.kubeapi import merge_diff

MANIFESTS = sorted((ROOT / "examples" / "k8s").glob("*.yaml"))


def documents(kind: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and (kind is None or doc["kind"] == kind):
                found.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return found


STREAMJOBS = documents("StreamJob")
OTHERS = [item for item in documents() if item[1]["kind"] != "StreamJob"]


def test_there_are_examples_of_both_jobs() -> None:
    names = {doc["metadata"]["name"] for _, doc in STREAMJOBS}
    assert names == {"wordcount", "windowed"}


@pytest.mark.parametrize(("name", "job"), STREAMJOBS, ids=[n for n, _ in STREAMJOBS])
def test_streamjob_is_admitted_unchanged(name: str, job: dict[str, Any]) -> None:
    stored, errors = schema.admit(job)
    assert errors == [], name
    defaulted = schema.apply_defaults(schema.openapi_schema(), yaml.safe_load(yaml.dump(job)))
    assert merge_diff(defaulted, stored) == {}, f"{name}: fields the API server would prune"
    model.parse_spec(stored["spec"])


@pytest.mark.parametrize(("name", "job"), STREAMJOBS, ids=[n for n, _ in STREAMJOBS])
def test_entrypoint_is_a_job_file_in_the_image(name: str, job: dict[str, Any]) -> None:
    path, _, function = job["spec"]["job"]["entrypoint"].partition(":")
    source = ROOT / path  # the image's WORKDIR /opt/streamjob holds examples/ as in the repo
    assert source.is_file(), name
    defined = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert function in defined, f"{name}: {path} defines no {function}()"


@pytest.mark.parametrize(("name", "job"), STREAMJOBS, ids=[n for n, _ in STREAMJOBS])
def test_checkpoints_go_to_the_example_s3(name: str, job: dict[str, Any]) -> None:
    secrets = {doc["metadata"]["name"]: doc for _, doc in OTHERS if doc["kind"] == "Secret"}
    checkpoints = job["spec"]["checkpoints"]
    assert checkpoints["dir"].startswith("s3://streamjob/"), name
    secret = secrets[checkpoints["s3"]["credentialsSecret"]]
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert checkpoints["s3"]["endpoint"] == "http://seaweedfs:8333"


@pytest.mark.parametrize(("name", "manifest"), OTHERS, ids=[n for n, _ in OTHERS])
def test_other_example_objects_are_valid_kubernetes(
    name: str, manifest: dict[str, Any], kube_validate: Callable[[dict[str, Any]], list[str]]
) -> None:
    assert kube_validate(manifest) == [], name


def test_readme_walks_through_the_steps() -> None:
    text = (ROOT / "examples" / "README.md").read_text()
    for step in ("helm", "kubectl apply -f examples/k8s/wordcount.yaml", "kubectl scale"):
        assert step in text
    for step in ("kubectl delete pod", "savepointTriggerNonce", "upgrade"):
        assert step in text
    assert Path(ROOT / "examples" / "k8s" / "seaweedfs.yaml").is_file()
