"""Fixtures of the deployment tests: helm, the chart rendered with given values, the examples.

- ``helm``: the helm binary (:mod:`tests.deploy.helm`); the test FAILS, not skips, when it is
  missing, since it comes with the test extra;
- ``render``: ``render(**values)`` -> the chart's manifests (``helm template``) as dicts;
- ``kube_validate``: validates a manifest against the Kubernetes OpenAPI schemas shipped offline
  in the ``kubernetes-validate`` package (strict: unknown fields are errors).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy import helm as helm_

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "streamjob"
KUBERNETES_VERSION = "1.35.0"  # the kubectl/helm generation the package ships


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        path = helm_.find_helm()
    except helm_.HelmNotFound as exc:
        pytest.fail(str(exc))
    answer = subprocess.run([path, "version", "--short"], capture_output=True, text=True)
    if answer.returncode != 0:
        pytest.fail(f"{path} does not run: {answer.stderr.strip()}; {helm_.INSTALL_HINT}")
    return path


def _set_args(values: dict[str, Any]) -> list[str]:
    args = []
    for key, value in values.items():
        if isinstance(value, list):
            args += ["--set", f"{key}={{{','.join(value)}}}"]
        else:
            args += ["--set", f"{key}={value}"]
    return args


@pytest.fixture(scope="session")
def render(helm: Path) -> Callable[..., list[dict[str, Any]]]:
    cache: dict[str, list[dict[str, Any]]] = {}

    def rendered(*, namespace: str = "streamjob-system", **values: Any) -> list[dict[str, Any]]:
        key = repr((namespace, sorted(values.items())))
        if key not in cache:
            command = [helm, "template", "streamjob", CHART, "--namespace", namespace]
            command += ["--include-crds", *_set_args(values)]
            out = subprocess.run(command, capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            cache[key] = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
        return cache[key]

    return rendered


@pytest.fixture(scope="session")
def kube_validate() -> Callable[[dict[str, Any]], list[str]]:
    def errors(manifest: dict[str, Any]) -> list[str]:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            return [f"{manifest['kind']}/{manifest['metadata']['name']}: {where}: {exc.message}"]
        return []

    return errors
