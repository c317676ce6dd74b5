"""Starting real JobManager and TaskManager processes on loopback for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """A JobManager and TaskManagers as child processes; killed and reaped on close."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = {**os.environ, "PYTHONSAFEPATH": "1", **env}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.jobmanager: subprocess.Popen[bytes] | None = None
        self.taskmanagers: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        return subprocess.Popen(
            [sys.executable, "-m", "streamjob.cluster.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_jobmanager(self, *args: str) -> None:
        self.jobmanager = self._spawn(
            "jobmanager", ["jobmanager", *args, "--rest-port", str(self.port)]
        )

    def start_taskmanager(self, *extra: str) -> subprocess.Popen[bytes]:
        n = len(self.taskmanagers)
        proc = self._spawn(
            f"taskmanager-{n}",
            [
                "taskmanager",
                "--jobmanager",
                self.url,
                "--tm-id",
                f"tm-{n}",
                "--heartbeat-interval",
                "0.2",
                "--jobmanager-timeout",
                "3",
                *extra,
            ],
        )
        self.taskmanagers.append(proc)
        return proc

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=5)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body or {}, timeout=10)

    def job(self) -> dict[str, Any] | None:
        try:
            jobs = self.get("/jobs")
            return self.get(f"/jobs/{jobs[0]['id']}") if jobs else None
        except (httpx.HTTPError, IndexError):
            return None

    def wait_for(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.logs()}")

    def wait_exit(self, timeout: float) -> int:
        assert self.jobmanager is not None
        try:
            return self.jobmanager.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"the JobManager did not finish in {timeout}s\n{self.logs()}"
            ) from None

    def logs(self) -> str:
        parts = []
        for path in sorted(self.tmp.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def close(self) -> None:
        for proc in [*self.taskmanagers, self.jobmanager]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in [*self.taskmanagers, self.jobmanager]:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        for log in self._logs:
            log.close()


@contextlib.contextmanager
def local_cluster(tmp: Path, env: dict[str, str]) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp, env)
    try:
        yield cluster
    finally:
        cluster.close()
