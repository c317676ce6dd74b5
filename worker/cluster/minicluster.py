"""The local mini-cluster: one JobManager and N TaskManagers as real processes on loopback.

``streamjob run JOB --parallelism N`` uses it (and so does ``make run``): the same processes,
TCP data plane and HTTP control plane as on Kubernetes, on one machine. The TaskManagers'
output (e.g. ``print()`` sinks) is forwarded to this process's stdout; progress comes from
the JobManager's REST API. Every child is stopped and reaped on exit, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from streamjob.cluster.rpc_client import RestPoller


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class MiniCluster:
    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        forward_output: bool = False,
        cwd: str | None = None,
    ) -> None:
        self.env = {**os.environ, "PYTHONSAFEPATH": "1", **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.forward_output = forward_output
        self.cwd = cwd or os.getcwd()
        self.jobmanager: subprocess.Popen[bytes] | None = None
        self.taskmanagers: list[subprocess.Popen[bytes]] = []
        self._files: list[IO[bytes]] = []
        self._pumps: list[threading.Thread] = []
        self.client = RestPoller(self.url)

    # -- processes -----------------------------------------------------------------------------
    def _spawn(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "streamjob.jobmanager.commands", *args]
        if self.log_dir is not None and not self.forward_output:
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
            self._files.append(log)
            return subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        pump = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
        pump.start()
        self._pumps.append(pump)
        return proc

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        log = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else None  # noqa: SIM115
        for line in proc.stdout:
            if log is not None:
                log.write(line)
                log.flush()
            if self.forward_output and not line.startswith(b"[streamjob]"):
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
        if log is not None:
            log.close()

    def start_jobmanager(self, *args: str) -> subprocess.Popen[bytes]:
        self.jobmanager = self._spawn(
            "jobmanager", ["jobmanager", *args, "--rest-port", str(self.port)]
        )
        return self.jobmanager

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

    # -- observing ---------------------------------------------------------------------------------
    def job(self) -> dict[str, Any] | None:
        return self.client.current_job()

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.jobmanager is not None and self.jobmanager.poll() is not None:
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

    def logs(self, lines: int = 25) -> str:
        if self.log_dir is None:
            return ""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    # -- stopping ---------------------------------------------------------------------------------
    def terminate(self) -> None:
        """Ask the JobManager to cancel the job and stop (SIGTERM), then the TaskManagers."""
        if self.jobmanager is not None and self.jobmanager.poll() is None:
            self.jobmanager.send_signal(signal.SIGTERM)

    def close(self) -> None:
        procs = [*self.taskmanagers, self.jobmanager]
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in procs:
            if proc is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        for pump in self._pumps:
            pump.join(2)
        for f in self._files:
            f.close()
        self.client.close()


@contextlib.contextmanager
def mini_cluster(**kwargs: Any) -> Iterator[MiniCluster]:
    cluster = MiniCluster(**kwargs)
    try:
        yield cluster
    finally:
        cluster.close()
