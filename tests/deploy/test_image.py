"""The container image: what the Dockerfile promises, and (where Docker runs) the image itself.

Aspects covered without Docker: ``ARG BASE_IMAGE`` with a public default, ``PYTHONSAFEPATH=1``,
an offline install from the wheelhouse (``--no-index``), a non-root user, the examples at the
WORKDIR the StreamJob entrypoints are relative to, a HEALTHCHECK, and a build context that carries
only what the image needs. Marked ``docker`` (skipped unless ``docker info`` succeeds): the image
builds and runs the word count with a JobManager and a TaskManager container on the host network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from tests.deploy.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def test_base_image_is_an_argument_with_a_public_default() -> None:
    assert re.search(r"^ARG BASE_IMAGE=python:3\.\d+-slim$", DOCKERFILE, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", DOCKERFILE, re.M)


def test_install_is_offline_from_the_wheelhouse() -> None:
    assert "--no-index --find-links=/tmp/wheelhouse" in DOCKERFILE
    assert "COPY build/wheelhouse/" in DOCKERFILE


def test_safe_path_non_root_and_health() -> None:
    assert "PYTHONSAFEPATH=1" in DOCKERFILE
    (user,) = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user.split(":")[0] not in ("0", "root")
    assert "HEALTHCHECK" in DOCKERFILE
    assert "WORKDIR /opt/streamjob" in DOCKERFILE and "examples/ /opt/streamjob/examples/" in (
        DOCKERFILE
    )


def test_build_context_is_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*"  # everything, then the exceptions
    assert {"!build/wheelhouse/", "!examples/", "!scripts/healthcheck.py"} <= set(ignored)


@pytest.mark.docker
@pytest.mark.skipif(not docker_available(), reason="no Docker engine (docker info fails)")
def test_image_runs_the_word_count_on_the_host_network(tmp_path) -> None:
    """Build the image (BASE_IMAGE from the environment, as `make image`), then run the word count.

    The JobManager and TaskManager containers share the host network; the JobManager's /readyz
    must answer and the job must reach RUNNING or FINISHED.
    """
    image = "streamjob:test"
    build = subprocess.run(["make", "-C", str(ROOT), "image", f"IMAGE={image}"], text=True)
    assert build.returncode == 0
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir(mode=0o777)
    common = ["docker", "run", "-d", "--rm", "--network=host", "-v", f"{checkpoints}:/chk"]
    jm = subprocess.run(
        [*common, image, "jobmanager", "examples/wordcount.py:build", "--parallelism", "1",
         "--checkpoint-dir", "file:///chk", "--rest-host", "127.0.0.1", "--rest-port", "8081",
         "--stay"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    tm = subprocess.run(
        [*common, image, "taskmanager", "--jobmanager", "http://127.0.0.1:8081",
         "--data-port", "6121", "--rest-port", "8082", "--tm-id", "tm-0"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8081/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the JobManager never became ready"
            time.sleep(1)
    finally:
        subprocess.run(["docker", "rm", "-f", jm, tm], capture_output=True)
