"""A stand-in kubelet for the kmock tests: runs each created Pod as a local process.

Every pod that appears in the API gets its own loopback address (127.X.Y.N, so fixed ports such
as 8081 work for every pod at once; each runner takes a random ``127.X.0.0/16``, so runners of
test sessions running at the same time do not collide) and then, with ``execute=True``, its
container's exact ``command`` + ``args`` with its ``env`` run as a local process: ``$(VAR)``
references expanded, ``fieldRef`` (``metadata.uid/name/namespace``, ``status.podIP``),
``secretKeyRef`` and ``configMapKeyRef`` resolved as a kubelet does. Two emulations stand in for
a pod's network: a literal ``0.0.0.0`` argument becomes the pod IP (a pod's "all addresses"),
and a Service name in a URL (``http://SERVICE:PORT``, also ``SERVICE.NS``, ``.svc``,
``.svc.cluster.local``) becomes the Service's own stable address (cluster DNS), where a TCP
proxy forwards each new connection to a running pod its selector matches at that moment
(kube-proxy), so a replaced backend pod is reached without restarting its clients; a pod waits
in ``Pending`` until its Services have a backend. The HTTP readiness and liveness probes are
run, and the pod's phase, IP, Ready condition and container state are patched back through the
API. A process that exits ends its pod ``Succeeded`` or ``Failed`` (``restartPolicy: Never``);
a deleted pod's process is terminated. With ``execute=False`` nothing runs: pods go ``Running``
and ``Ready`` at once, and :meth:`PodRunner.fail` ends one, as a crash would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import os
import random
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class RunningPod:
    name: str
    uid: str
    ip: str
    manifest: dict[str, Any]
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    ready: bool = False
    phase: str = "Pending"
    log_path: Path | None = None
    command: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, str] = dataclasses.field(default_factory=dict)


class PodRunner:
    def __init__(
        self,
        *,
        api_url: str,
        namespace: str = "default",
        execute: bool = False,
        log_dir: Path | None = None,
        base_env: Mapping[str, str] | None = None,
        poll_s: float = 0.05,
        probe_period_s: float | None = 0.3,
        first_ip: int = 10,
        subnet: int | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.namespace = namespace
        self.execute = execute
        self.log_dir = log_dir
        self.base_env = dict(base_env) if base_env is not None else _default_env()
        self.poll_s = poll_s
        self.probe_period_s = probe_period_s
        self.pods: dict[str, RunningPod] = {}  # by uid
        self._next_ip = first_ip
        #: the second octet of every address this runner hands out (127.SUBNET.x.y)
        self.subnet = subnet if subnet is not None else random.randint(1, 254)
        self.services: dict[str, ServiceProxy] = {}
        self._proxies_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(base_url=self.api_url, timeout=5.0)
        self._probe = httpx.AsyncClient(timeout=2.0)
        self._loop_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PodRunner:
        self._loop_task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await asyncio.gather(*(self._stop(p) for p in list(self.pods.values())))
        for proxy in self.services.values():
            await proxy.close()
        await self._http.aclose()
        await self._probe.aclose()

    # -- test controls ------------------------------------------------------------------------
    def by_name(self, name: str) -> RunningPod:
        live = [p for p in self.pods.values() if p.name == name and p.phase != "Deleted"]
        if not live:
            raise KeyError(f"no running pod {name}")
        return live[-1]

    async def fail(self, name: str, *, exit_code: int = 1) -> RunningPod:
        """End a pod as a crash would: kill its process, or (simulated) mark it Failed."""
        pod = self.by_name(name)
        if pod.process is not None and pod.process.returncode is None:
            os.killpg(pod.process.pid, signal.SIGKILL)
            return pod
        await self._finish(pod, exit_code)
        return pod

    # -- the watch loop -----------------------------------------------------------------------
    async def _watch(self) -> None:
        while True:
            try:
                response = await self._http.get(f"/api/v1/namespaces/{self.namespace}/pods")
                items = response.json().get("items", []) if response.status_code == 200 else []
            except httpx.HTTPError:
                items = []
            seen = set()
            for item in items:
                uid = item.get("metadata", {}).get("uid")
                if not uid:
                    continue
                seen.add(uid)
                if uid not in self.pods:
                    self._admit(item)
            gone = [p for u, p in self.pods.items() if u not in seen and p.phase != "Deleted"]
            for pod in gone:
                pod.phase = "Deleted"
            await asyncio.gather(*(self._stop(pod) for pod in gone))
            await asyncio.sleep(self.poll_s)

    def _admit(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        n = self._next_ip
        self._next_ip += 1
        ip = f"127.{self.subnet}.{n // 250}.{n % 250 + 2}"
        pod = RunningPod(name=meta["name"], uid=meta["uid"], ip=ip, manifest=manifest)
        self.pods[pod.uid] = pod
        pod.task = asyncio.create_task(self._run(pod))

    async def _run(self, pod: RunningPod) -> None:
        if not self.execute:
            pod.phase, pod.ready = "Running", True
            await self._patch(pod, phase="Running", ready=True)
            return
        container = pod.manifest["spec"]["containers"][0]
        try:
            env = await self._environment(pod, container)
            argv = [_expand(a, env) for a in container.get("command", [])]
            argv += [_expand(a, env) for a in container.get("args", [])]
            argv = await self._resolve_services(pod, argv)
        except (KeyError, OSError, httpx.HTTPError) as exc:
            pod.phase = "Failed"
            await self._patch(pod, phase="Failed", ready=False, exit_code=127, reason=str(exc))
            return
        argv = [pod.ip if a == "0.0.0.0" else a for a in argv]
        pod.command, pod.env = argv, env
        log = self._log_file(pod)
        try:
            pod.process = await asyncio.create_subprocess_exec(
                *argv,
                env={**self.base_env, **env},
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            await self._finish(pod, 127, reason=str(exc))
            return
        finally:
            if log is not None:
                log.close()
        pod.phase = "Running"
        await self._patch(pod, phase="Running", ready=False)
        probes = asyncio.create_task(self._probe_loop(pod, container))
        code = await pod.process.wait()
        probes.cancel()
        if pod.phase != "Deleted":
            await self._finish(pod, code)

    def _log_file(self, pod: RunningPod) -> Any:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        pod.log_path = self.log_dir / f"{pod.name}-{pod.uid[:8]}.log"
        return pod.log_path.open("wb")

    async def _finish(self, pod: RunningPod, code: int, *, reason: str | None = None) -> None:
        pod.phase = "Succeeded" if code == 0 else "Failed"
        pod.ready = False
        await self._patch(pod, phase=pod.phase, ready=False, exit_code=code, reason=reason)

    async def _stop(self, pod: RunningPod) -> None:
        process = pod.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if pod.task is not None and not pod.task.done():
            pod.task.cancel()
            # wait() raises no error of the task's, but our own cancellation (the runner
            # closing while its watch loop stops a deleted pod) still gets through
            await asyncio.wait([pod.task])

    # -- probes -------------------------------------------------------------------------------
    async def _probe_loop(self, pod: RunningPod, container: Mapping[str, Any]) -> None:
        ready_probe = container.get("readinessProbe")
        live_probe = container.get("livenessProbe")
        failures = 0
        if ready_probe is None:
            pod.ready = True
            await self._patch(pod, phase="Running", ready=True)
        while True:
            if ready_probe is not None:
                ok = await self._check(pod, ready_probe)
                if ok != pod.ready:
                    pod.ready = ok
                    await self._patch(pod, phase="Running", ready=ok)
            if live_probe is not None and pod.ready:
                failures = 0 if await self._check(pod, live_probe) else failures + 1
                if failures >= int(live_probe.get("failureThreshold", 3)):
                    assert pod.process is not None
                    os.killpg(pod.process.pid, signal.SIGKILL)
                    return
            period = float((ready_probe or live_probe or {}).get("periodSeconds", 10))
            await asyncio.sleep(self.probe_period_s or period)

    async def _check(self, pod: RunningPod, probe: Mapping[str, Any]) -> bool:
        get = probe.get("httpGet")
        if get is None:
            return True
        url = f"http://{pod.ip}:{get['port']}{get.get('path', '/')}"
        try:
            response = await self._probe.get(url)
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 400

    # -- what a kubelet resolves --------------------------------------------------------------
    async def _environment(self, pod: RunningPod, container: Mapping[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        meta = pod.manifest["metadata"]
        fields = {
            "metadata.uid": pod.uid,
            "metadata.name": pod.name,
            "metadata.namespace": meta.get("namespace", self.namespace),
            "status.podIP": pod.ip,
        }
        for item in container.get("env") or ():
            source = item.get("valueFrom")
            if source is None:
                env[item["name"]] = _expand(str(item.get("value", "")), env)
            elif "fieldRef" in source:
                env[item["name"]] = fields[source["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                env[item["name"]] = await self._key("secrets", ref["name"], ref["key"])
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                env[item["name"]] = await self._key("configmaps", ref["name"], ref["key"])
        return env

    async def _key(self, kind: str, name: str, key: str) -> str:
        response = await self._http.get(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")
        if response.status_code != 200:
            raise KeyError(f"{kind}/{name} not found")
        body = response.json()
        if key in (body.get("stringData") or {}):
            return str(body["stringData"][key])
        value = (body.get("data") or {})[key]
        return base64.b64decode(value).decode() if kind == "secrets" else str(value)

    async def _resolve_services(self, pod: RunningPod, argv: list[str]) -> list[str]:
        """Cluster DNS: a Service named in a URL becomes its proxy's address, once the Service
        has a running pod behind it."""
        while True:
            response = await self._http.get(f"/api/v1/namespaces/{self.namespace}/services")
            services = response.json().get("items", []) if response.status_code == 200 else []
            resolved, missing = list(argv), False
            for service in services:
                name = service["metadata"]["name"]
                hosts = [
                    f"{name}.{self.namespace}.svc.cluster.local",
                    f"{name}.{self.namespace}.svc",
                    f"{name}.{self.namespace}",
                    name,
                ]
                if not any(f"//{h}:" in a for a in resolved for h in hosts):
                    continue
                if self._backend(service) is None:
                    missing = True
                    continue
                ip = (await self._proxy(service)).ip
                for host in hosts:
                    resolved = [a.replace(f"//{host}:", f"//{ip}:") for a in resolved]
            if not missing:
                return resolved
            await asyncio.sleep(self.poll_s)

    def _backend(self, service: Mapping[str, Any]) -> str | None:
        """A running pod the Service's selector matches (a ready one first), as kube-proxy
        picks an endpoint; the newest pod of a name wins."""
        selector = (service.get("spec") or {}).get("selector") or {}
        found = [
            candidate
            for candidate in self.pods.values()
            if candidate.phase == "Running"
            and all(
                (candidate.manifest["metadata"].get("labels") or {}).get(k) == v
                for k, v in selector.items()
            )
        ]
        found.sort(key=lambda c: c.ready)
        return found[-1].ip if found else None

    async def _proxy(self, service: Mapping[str, Any]) -> ServiceProxy:
        name = service["metadata"]["name"]
        async with self._proxies_lock:
            return await self._proxy_locked(name, service)

    async def _proxy_locked(self, name: str, service: Mapping[str, Any]) -> ServiceProxy:
        proxy = self.services.get(name)
        if proxy is None:
            n = len(self.services) + 2
            ip = f"127.{self.subnet}.250.{n}"
            ports = [
                (int(p["port"]), int(p.get("targetPort") or p["port"]))
                for p in (service.get("spec") or {}).get("ports") or ()
            ]
            proxy = ServiceProxy(name=name, ip=ip, backend=lambda: self._backend(service))
            await proxy.start(ports)
            self.services[name] = proxy
        return proxy

    # -- writing the status back --------------------------------------------------------------
    async def _patch(
        self,
        pod: RunningPod,
        *,
        phase: str,
        ready: bool,
        exit_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        name = pod.manifest["spec"]["containers"][0]["name"]
        if exit_code is None:
            state: dict[str, Any] = {"running": {"startedAt": _now()}}
        else:
            state = {"terminated": {"exitCode": exit_code, "reason": reason or "Error"}}
        status = {
            "phase": phase,
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": _now(),
                },
            ],
            "containerStatuses": [
                {"name": name, "ready": ready, "restartCount": 0, "state": state}
            ],
        }
        path = f"/api/v1/namespaces/{self.namespace}/pods/{pod.name}/status"
        headers = {"Content-Type": "application/merge-patch+json"}
        live = await self._http.get(f"/api/v1/namespaces/{self.namespace}/pods/{pod.name}")
        if live.status_code != 200 or live.json()["metadata"].get("uid") != pod.uid:
            return  # deleted, or already replaced by a pod of the same name
        await self._http.patch(path, json={"status": status}, headers=headers)


class ServiceProxy:
    """A Service's stable address: each new connection goes to the current backend pod."""

    def __init__(self, *, name: str, ip: str, backend: Any) -> None:
        self.name = name
        self.ip = ip
        self._backend = backend
        self._servers: list[asyncio.Server] = []
        self._pipes: set[asyncio.Task[None]] = set()
        #: connections forwarded, by backend IP (for tests)
        self.forwarded: dict[str, int] = {}

    async def start(self, ports: list[tuple[int, int]]) -> None:
        for port, target in ports:
            server = await asyncio.start_server(
                lambda r, w, t=target: self._connect(r, w, t), host=self.ip, port=port
            )
            self._servers.append(server)

    async def _connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int
    ) -> None:
        ip = self._backend()
        try:
            if ip is None:
                raise OSError(f"no running pod behind Service {self.name}")
            up_reader, up_writer = await asyncio.open_connection(ip, target)
        except OSError:
            writer.close()
            return
        self.forwarded[ip] = self.forwarded.get(ip, 0) + 1
        for pipe in (_pipe(reader, up_writer), _pipe(up_reader, writer)):
            task = asyncio.create_task(pipe)
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._pipes):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


def _expand(text: str, env: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _default_env() -> dict[str, str]:
    """A container-like environment whose PATH finds this venv's ``streamjob``."""
    bin_dir = str(Path(sys.executable).parent)
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "LC_ALL")}
    return {**keep, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
