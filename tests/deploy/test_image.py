"""The container image: what the Dockerfile promises, and (where Docker runs) the image itself.

Aspects covered without Docker: ``ARG BASE_IMAGE`` with a public default, ``PYTHONSAFEPATH=1``,
an offline install from the wheelhouse (``--no-index``), a non-root user, the examples at the
WORKDIR the StreamJob entrypoints are relative to, a HEALTHCHECK, and a build context that carries
only what the image needs. The image built and run in Docker: ``test_docker_image.py``.
"""

from __future__ import annotations

import re

from tests.deploy.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


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
