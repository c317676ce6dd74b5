"""The pod runner: a Pod's exact command, args and env as a local process on its own 127.0.0.N.

Aspects covered: the downward API, ``secretKeyRef`` and ``$(VAR)`` expansion; each pod on its own
loopback address with ``0.0.0.0`` meaning that address, so two pods use the same fixed port;
readiness probes turn into the Ready condition; a process's exit code ends the pod Succeeded or
Failed; a Service name in a URL resolves to a running pod behind it; deleting a pod stops its
process. (What the lead's JobManager and TaskManager processes will run on.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.operator.conftest import NAMESPACE, Cluster
from tests.operator.podrunner import PodRunner

pytestmark = pytest.mark.timeout(60)


def pod(name: str, command: list[str], **container: Any) -> dict[str, Any]:
    labels = container.pop("labels", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "local", "command": command, **container}],
        },
    }


def server(name: str) -> dict[str, Any]:
    return pod(
        name,
        [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "8081"],
        readinessProbe={"httpGet": {"path": "/", "port": 8081}, "periodSeconds": 1},
        labels={"app": name},
    )


async def phase(cluster: Cluster, name: str, wanted: str, *, ready: bool | None = None) -> Any:
    def check() -> dict[str, Any] | None:
        found = cluster.pods().get(name)
        if found is None or found.get("status", {}).get("phase") != wanted:
            return None
        conditions = found["status"].get("conditions") or []
        is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return found if ready is None or is_ready == ready else None

    return await cluster.wait_for(f"{name} {wanted}", check, timeout=20)


async def test_two_pods_share_a_fixed_port_on_their_own_addresses(cluster: Cluster) -> None:
    async with PodRunner(api_url=cluster.url, namespace=NAMESPACE, execute=True) as runner:
        await cluster.client.create(server("web-a"))
        await cluster.client.create(server("web-b"))
        a = await phase(cluster, "web-a", "Running", ready=True)
        b = await phase(cluster, "web-b", "Running", ready=True)
        assert a["status"]["podIP"] != b["status"]["podIP"]
        assert a["status"]["podIP"].startswith("127.0.")
        assert runner.by_name("web-a").command[-2:] == [a["status"]["podIP"], "8081"]
        await cluster.client.delete_pod(NAMESPACE, "web-a")
        process = runner.by_name("web-b").process
        assert process is not None and process.returncode is None
        await cluster.wait_for(
            "web-a stopped",
            lambda: (
                next(p for p in runner.pods.values() if p.name == "web-a").process.returncode
                is not None
            ),
        )


async def test_env_from_the_downward_api_secrets_and_expansion(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "env.txt"
    await cluster.create_secret("creds", {"TOKEN": "s3cret"})
    script = (
        "import os, sys; open(sys.argv[1], 'w').write(' '.join(os.environ[k] for k in "
        "('STREAMJOB_POD_UID', 'STREAMJOB_POD_IP', 'TOKEN', 'GREETING'))); sys.exit(3)"
    )
    spec = pod(
        "env-check",
        [sys.executable, "-c", script, str(out)],
        env=[
            {"name": "STREAMJOB_POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "STREAMJOB_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
            {"name": "GREETING", "value": "hello-$(TOKEN)"},
        ],
    )
    async with PodRunner(api_url=cluster.url, namespace=NAMESPACE, execute=True):
        created = await cluster.client.create(spec)
        failed = await phase(cluster, "env-check", "Failed")
    state = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 3
    uid, ip, token, greeting = out.read_text().split()
    assert uid == created["metadata"]["uid"]
    assert ip == failed["status"]["podIP"]
    assert (token, greeting) == ("s3cret", "hello-s3cret")


async def test_a_service_name_resolves_to_a_running_pod_behind_it(cluster: Cluster) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8081}]},
    }
    client = pod(
        "client",
        [sys.executable, "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1])"],
        args=["http://web:8081/"],
    )
    async with PodRunner(api_url=cluster.url, namespace=NAMESPACE, execute=True) as runner:
        await cluster.client.create(service)
        await cluster.client.create(client)  # waits Pending: nothing behind the Service yet
        await cluster.client.create(server("web"))
        await phase(cluster, "client", "Succeeded")
        web_ip = runner.by_name("web").ip
        assert runner.by_name("client").command[-1] == f"http://{web_ip}:8081/"


async def test_simulated_pods_run_and_fail_on_request(cluster: Cluster) -> None:
    async with PodRunner(api_url=cluster.url, namespace=NAMESPACE) as runner:
        await cluster.client.create(pod("sim", ["never-run"]))
        await phase(cluster, "sim", "Running", ready=True)
        await runner.fail("sim")
        await phase(cluster, "sim", "Failed", ready=False)
