"""The pod runner: a Pod's exact command, args and env as a local process on its own 127.X.Y.N.

Aspects covered: the downward API, ``secretKeyRef`` and ``$(VAR)`` expansion; each pod on its own
loopback address with ``0.0.0.0`` meaning that address, so two pods use the same fixed port;
readiness probes turn into the Ready condition; a process's exit code ends the pod Succeeded or
Failed; a Service name in a URL resolves to the Service's stable address, whose proxy reaches
the current pod behind it (also after that pod was replaced); deleting a pod stops its process;
closing the runner while it stops a deleted pod closes it (the cancellation is not swallowed).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.operator.harness import NAMESPACE, Cluster
from tests.operator.podrunner import PodRunner, RunningPod

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
        assert a["status"]["podIP"].startswith(f"127.{runner.subnet}.")
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


async def test_a_service_name_resolves_to_a_proxy_that_follows_its_pods(cluster: Cluster) -> None:
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
        proxy = runner.services["web"]
        assert runner.by_name("client").command[-1] == f"http://{proxy.ip}:8081/"
        first_ip = runner.by_name("web").ip
        assert proxy.forwarded == {first_ip: 1}
        # the backend is replaced by a new pod (new IP): the Service's address still reaches it
        await cluster.client.delete_pod(NAMESPACE, "web")
        await cluster.client.create(server("web"))
        await phase(cluster, "web", "Running", ready=True)
        second_ip = runner.by_name("web").ip
        assert second_ip != first_ip
        await cluster.client.create({**client, "metadata": {**client["metadata"], "name": "again"}})
        await phase(cluster, "again", "Succeeded")
        assert proxy.forwarded == {first_ip: 1, second_ip: 1}


async def test_simulated_pods_run_and_fail_on_request(cluster: Cluster) -> None:
    async with PodRunner(api_url=cluster.url, namespace=NAMESPACE) as runner:
        await cluster.client.create(pod("sim", ["never-run"]))
        await phase(cluster, "sim", "Running", ready=True)
        await runner.fail("sim")
        await phase(cluster, "sim", "Failed", ready=False)


async def test_stopping_a_pod_does_not_swallow_the_runners_own_cancellation(
    cluster: Cluster,
) -> None:
    """The runner's watch loop stops deleted pods; when the runner closes at that moment, the
    loop's cancellation must get through (it once was taken for the pod task's, and the loop
    polled the API for ever)."""
    release = asyncio.Event()

    async def winding_down() -> None:  # a pod task whose cleanup takes a while
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()
            raise

    async with PodRunner(api_url=cluster.url, namespace=NAMESPACE) as runner:
        pod = RunningPod(name="p", uid="u", ip="127.0.0.1", manifest={})
        pod.task = asyncio.create_task(winding_down())
        await asyncio.sleep(0)
        stopping = asyncio.create_task(runner._stop(pod))
        await asyncio.sleep(0.05)
        stopping.cancel()
        release.set()
        await asyncio.wait([stopping])
        assert stopping.cancelled()
