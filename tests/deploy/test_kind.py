"""The examples on a real kind cluster (``make e2e-kind`` installs the chart and SeaweedFS first).

Marked ``kind``; skipped unless ``kubectl`` reaches the cluster of ``STREAMJOB_KIND_CONTEXT``
(default ``kind-kind``). Covered: the operator Deployment is available; the word count reaches a
running job with its TaskManagers ready and completes a checkpoint to S3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

import pytest

from tests.deploy.conftest import ROOT

CONTEXT = os.environ.get("STREAMJOB_KIND_CONTEXT", "kind-kind")


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--context", CONTEXT, *args], capture_output=True, text=True, check=check
    )


def cluster_reachable() -> bool:
    if shutil.which("kubectl") is None:
        return False
    try:
        return kubectl("get", "--raw", "/readyz", check=False).returncode == 0
    except OSError:
        return False


pytestmark = [
    pytest.mark.kind,
    pytest.mark.skipif(not cluster_reachable(), reason=f"no reachable cluster {CONTEXT}"),
]


def streamjob(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl("get", "sj", name, "-o", "json").stdout)
    return found


def test_operator_is_available() -> None:
    kubectl("-n", "streamjob-system", "rollout", "status", "deployment/streamjob", "--timeout=2m")


def test_wordcount_runs_and_checkpoints() -> None:
    kubectl("apply", "-f", str(ROOT / "examples" / "k8s" / "wordcount.yaml"))
    try:
        deadline = time.monotonic() + 300
        while True:
            status = streamjob("wordcount").get("status") or {}
            ready = (status.get("taskManagers") or {}).get("ready")
            if (status.get("lastCheckpoint") or {}).get("id") and ready == 2:
                break
            assert time.monotonic() < deadline, f"no checkpoint in time: {status}"
            time.sleep(3)
    finally:
        kubectl("delete", "-f", str(ROOT / "examples" / "k8s" / "wordcount.yaml"), check=False)
