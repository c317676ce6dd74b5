"""Docker for the deployment tests: the engine, the image built once per input, containers.

- :func:`require_engine`: skips when ``docker info`` fails, naming the reason and the fix
  (``scripts/docker-setup.sh``); with ``STREAMJOB_REQUIRE_DOCKER=1`` (CI, once the engine is up)
  it fails instead, so a broken engine cannot pass as "skipped".
- :func:`streamjob_image`: ``make image`` on a base image with no network; reused while the hash of
  everything that goes into it (the package sources, pyproject, Dockerfile, examples, health
  check, the base image's id) equals the image's label ``io.streamjob.inputs``.
- :class:`Container`: ``docker run -d --network host``, logs, health, kill, removal. Every
  container carries the label ``io.streamjob.test`` and is removed by the test that made it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGE = "streamjob:test"
DEBOOTSTRAP_BASE = "streamjob-base:bookworm"  # what scripts/docker-setup.sh imports
PUBLIC_BASE = "python:3.11-slim"  # the Dockerfile's default, when it is there already
INPUTS_LABEL = "io.streamjob.inputs"
TEST_LABEL = "io.streamjob.test"
REQUIRE_ENV = "STREAMJOB_REQUIRE_DOCKER"
SETUP_HINT = "run scripts/docker-setup.sh (installs docker.io, starts dockerd, builds the base)"

# what goes into the image (the wheel is built from the first four)
INPUT_TREES = ("worker", "operator", "examples")
INPUT_FILES = ("pyproject.toml", "README.md", "Dockerfile", ".dockerignore")
INPUT_EXTRA = ("scripts/healthcheck.py",)


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run ``docker ARGS``; its stdout, stripped. A failure says the command and its stderr."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"`docker {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout.strip()


def engine_problem() -> str | None:
    """None when a Docker engine answers, else why not (for the skip or failure message)."""
    if shutil.which("docker") is None:
        return "no `docker` command on PATH"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer in 30 s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`docker info` fails: {last}"
    return None


def require_engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    message = f"no Docker engine reachable ({problem}); {SETUP_HINT}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {message}", pytrace=False)
    pytest.skip(message)


def _image_id(name: str) -> str | None:
    found = docker("image", "inspect", "--format", "{{.Id}}", name, check=False)
    return found or None


def base_image() -> tuple[str, str]:
    """(name, id) of the base to build on: $STREAMJOB_BASE_IMAGE, else the debootstrap base of
    scripts/docker-setup.sh, else the public default if it was loaded by hand."""
    wanted = os.environ.get("STREAMJOB_BASE_IMAGE")
    candidates = (wanted,) if wanted else (DEBOOTSTRAP_BASE, PUBLIC_BASE)
    for name in candidates:
        if name and (image_id := _image_id(name)):
            return name, image_id
    pytest.fail(
        f"no base image: none of {', '.join(c for c in candidates if c)} is in the engine and "
        f"nothing can be pulled here; {SETUP_HINT}",
        pytrace=False,
    )


def inputs_hash(base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    files = [ROOT / f for f in (*INPUT_FILES, *INPUT_EXTRA)]
    for tree in INPUT_TREES:
        files += (p for p in (ROOT / tree).rglob("*") if p.is_file())
    for path in sorted(files):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def streamjob_image() -> str:
    """The image of the current sources (``streamjob:test``), built unless it is up to date.

    One build at a time (a lock file), since ``make image`` rewrites build/wheelhouse.
    """
    base, base_id = base_image()
    wanted = inputs_hash(base_id)
    lock = ROOT / "build" / ".docker-image.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        labels = "{{json .Config.Labels}}"
        label = docker("image", "inspect", "--format", labels, TEST_IMAGE, check=False)
        if label and (json.loads(label) or {}).get(INPUTS_LABEL) == wanted:
            return TEST_IMAGE
        previous = _image_id(TEST_IMAGE)
        build = subprocess.run(
            ["make", "-C", str(ROOT), "image", f"IMAGE={TEST_IMAGE}", f"BASE_IMAGE={base}",
             f"DOCKER_BUILD_FLAGS=--label {INPUTS_LABEL}={wanted}"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if build.returncode != 0:
            output = f"{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
            raise AssertionError(f"`make image` on {base} failed:\n{output}")
        if previous and previous != _image_id(TEST_IMAGE):
            docker("rmi", previous, check=False)  # the outdated one (kept if a container uses it)
    return TEST_IMAGE


class Container:
    """A detached container of the image on the host network (``--network host``)."""

    def __init__(
        self,
        image: str,
        args: Sequence[str],
        *,
        name: str,
        env: dict[str, str] | None = None,
        volumes: Sequence[str] = (),
        extra: Sequence[str] = (),
    ) -> None:
        self.name = f"sjtest-{uuid.uuid4().hex[:8]}-{name}"
        command = ["run", "-d", "--name", self.name, "--network", "host"]
        command += ["--label", f"{TEST_LABEL}=1"]
        for key, value in (env or {}).items():
            command += ["-e", f"{key}={value}"]
        for volume in volumes:
            command += ["-v", volume]
        self.id = docker(*command, *extra, image, *args)

    def state(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            docker("inspect", "--format", "{{json .State}}", self.id)
        )
        return found

    def running(self) -> bool:
        return bool(self.state()["Running"])

    def logs(self, lines: int = 40) -> str:
        done = subprocess.run(
            ["docker", "logs", "--tail", str(lines), self.id],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return f"--- {self.name}\n{done.stdout}{done.stderr}"

    def kill(self) -> None:
        """SIGKILL, like a node that died: no shutdown code runs."""
        docker("kill", "--signal", "KILL", self.id)

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.id, check=False)


@contextlib.contextmanager
def containers() -> Iterator[list[Container]]:
    """A list the test appends its containers to; all of them are removed at the end."""
    made: list[Container] = []
    try:
        yield made
    finally:
        for container in made:
            container.remove()


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str]
) -> Any:
    """Poll until ``predicate()`` is truthy; on time-out the failure shows the containers' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs()}")
