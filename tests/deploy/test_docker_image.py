"""The container image, built and run in a real Docker engine (marked ``docker``).

Aspects covered: the image runs as a non-root user with ``PYTHONSAFEPATH=1``, ``streamjob
--help`` is its default command, its health check fails when nothing answers; the word count
(:mod:`tests.deploy.docker_wordcount`) runs with one JobManager and two TaskManager containers
on the host network, checkpoints on SeaweedFS at 127.0.0.1, one TaskManager container killed with
``docker kill`` after checkpoints completed and replaced by a new container under the same
TaskManager id (as a Kubernetes pod would be): the committed output equals the failure-free one,
exactly once, while the at-least-once FileSink under the same kill shows duplicates (the negative
control); the probes the chart and the operator wire answer (JobManager ``/readyz`` and
``/healthz``, TaskManager ``/healthz``, the operator's kopf liveness endpoint, the image's
HEALTHCHECK); the operator container reconciles a StreamJob on a kmock API server and stops
cleanly on SIGTERM.

Without a Docker engine every test here skips with the reason, unless
``STREAMJOB_REQUIRE_DOCKER=1`` (CI sets it once scripts/docker-setup.sh brought the engine up):
then they fail. The image is built by ``make image`` on the debootstrap base of
scripts/docker-setup.sh and reused while its inputs are unchanged (:mod:`tests.deploy.containers`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamjob.cluster.minicluster import free_port
from streamjob.cluster.rpc_client import RestPoller
from tests.cluster.jobs import committed
from tests.deploy import containers as dk
from tests.deploy.docker_wordcount import WORDS_PER_LINE, expected_pairs
from tests.operator.conftest import Cluster, api, cluster  # noqa: F401 (fixtures)
from tests.operator.simulation import spec_dict

pytestmark = pytest.mark.docker

JOB_FILE = Path(__file__).with_name("docker_wordcount.py")
JOB_IN_IMAGE = "/opt/streamjob/jobs/docker_wordcount.py"
IMAGE_UID = 10001
S3_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "STREAMJOB_S3_PATH_STYLE",
)


@pytest.fixture(scope="module")
def image() -> str:
    dk.require_engine()
    return dk.streamjob_image()


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


# -- the image itself ----------------------------------------------------------------------------
def test_non_root_safe_path_cli_and_a_health_check_that_can_fail(image: str) -> None:
    config = json.loads(dk.docker("image", "inspect", "--format", "{{json .Config}}", image))
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert "PYTHONSAFEPATH=1" in config["Env"]
    assert config["Healthcheck"]["Test"][-1] == "/usr/local/bin/streamjob-healthcheck"

    usage = dk.docker("run", "--rm", "--network", "none", image)  # the default command
    assert usage.startswith("usage: streamjob")
    for command in ("jobmanager", "taskmanager", "operator", "savepoint"):
        assert command in usage

    probe = (
        "import json, os, sys, kopf, kubernetes, rocksdict, boto3, streamjob.operator.main;"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'safe_path': "
        "sys.flags.safe_path, 'cwd_on_path': '' in sys.path or os.getcwd() in sys.path, "
        "'prefix': sys.prefix, 'writable_prefix': os.access(sys.prefix, os.W_OK), "
        "'cwd': os.getcwd(), 'examples': sorted(os.listdir('examples'))}))"
    )
    facts = json.loads(
        dk.docker("run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", probe)
    )
    assert facts["uid"] == IMAGE_UID and facts["gid"] == IMAGE_UID, facts
    assert facts["safe_path"] == 1 and not facts["cwd_on_path"], facts
    assert facts["prefix"] == "/opt/venv" and not facts["writable_prefix"], facts
    assert facts["cwd"] == "/opt/streamjob" and "wordcount.py" in facts["examples"], facts

    # the HEALTHCHECK command exits 1 when no role answers (so "healthy" below means something)
    check = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", image,
         "/usr/local/bin/streamjob-healthcheck"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 1, check.stderr


# -- the word count: a JobManager and TaskManager containers, one killed -------------------------
class WordCountContainers:
    """The job's containers on the host network, and the JobManager's REST API."""

    def __init__(self, image: str, out: Path, checkpoint_dir: str, job_env: dict[str, str]):
        self.image = image
        self.checkpoint_dir = checkpoint_dir
        self.env = {**{k: os.environ[k] for k in S3_ENV}, **job_env, "STREAMJOB_WC_OUT": "/out"}
        self.volumes = (f"{out}:/out", f"{JOB_FILE}:{JOB_IN_IMAGE}:ro")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rest = RestPoller(self.url)
        self.all: list[dk.Container] = []
        self.jobmanager: dk.Container | None = None

    def logs(self) -> str:
        return "\n".join(c.logs() for c in self.all)

    def start_jobmanager(self) -> dk.Container:
        args = ["--log-level", "INFO", "jobmanager", "jobs/docker_wordcount.py:build", "-p", "2"]
        args += ["--checkpoint-dir", self.checkpoint_dir, "--checkpoint-interval", "0.5"]
        args += ["--heartbeat-timeout", "2", "--restart-strategy", "fixed-delay:5:0.5"]
        args += ["--rest-host", "127.0.0.1", "--rest-port", str(self.port), "--stay"]
        env = {**self.env, "STREAMJOB_HEALTH_URL": f"{self.url}/healthz"}
        self.jobmanager = self._start("jobmanager", args, env)
        return self.jobmanager

    def start_taskmanager(self, tm_id: str) -> tuple[dk.Container, str, str]:
        """A TaskManager container with a new pod uid: (the container, its health URL, uid)."""
        rest_port, data_port, pod_uid = free_port(), free_port(), str(uuid.uuid4())
        args = ["--log-level", "INFO", "taskmanager", "--jobmanager", self.url]
        args += ["--host", "127.0.0.1", "--data-port", str(data_port)]
        args += ["--rest-port", str(rest_port), "--tm-id", tm_id]
        args += ["--heartbeat-interval", "0.2", "--jobmanager-timeout", "3"]
        health = f"http://127.0.0.1:{rest_port}/healthz"
        env = {
            **self.env,
            "STREAMJOB_POD_UID": pod_uid,
            "STREAMJOB_POD_IP": "127.0.0.1",
            "STREAMJOB_HEALTH_URL": health,
        }
        return self._start(tm_id, args, env), health, pod_uid

    def registered(self, pod_uid: str) -> bool:
        """Whether the TaskManager of this pod uid is registered and alive at the JobManager."""
        found = self.read("/internal/taskmanagers") or []
        return any(t["pod_uid"] == pod_uid and t["alive"] for t in found)

    def read(self, path: str) -> Any:
        """GET for polling: None while the JobManager does not answer (e.g. busy under load)."""
        try:
            return self.rest.get(path)
        except httpx.HTTPError:
            return None

    def completed(self, job_id: str) -> int:
        found = self.read(f"/jobs/{job_id}/checkpoints")
        return 0 if found is None else int(found["counts"]["completed"])

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> dk.Container:
        container = dk.Container(self.image, args, name=name, env=env, volumes=self.volumes)
        self.all.append(container)
        return container

    def job(self) -> dict[str, Any] | None:
        return self.rest.current_job()

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.rest.get(f"/jobs/{job_id}/checkpoints")
        return found

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        def checked() -> Any:
            assert self.jobmanager is not None
            if not self.jobmanager.running():
                raise AssertionError(f"the JobManager container exited\n{self.logs()}")
            return predicate()

        return dk.wait_for(checked, timeout, what, self.logs)

    def close(self) -> None:
        self.rest.close()
        for container in self.all:
            container.remove()


@pytest.mark.seaweedfs
@pytest.mark.timeout(420)
@pytest.mark.parametrize("variant", ["exactly-once", "at-least-once-negative-control"])
def test_word_count_containers_with_a_killed_taskmanager(
    image: str, tmp_path: Path, seaweedfs_checkpoint_url: Callable[[], str], variant: str
) -> None:
    lines = 24000
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the containers write as uid 10001
    at_least_once = variant.startswith("at-least-once")
    job_env = {
        "STREAMJOB_WC_LINES": str(lines),
        "STREAMJOB_WC_RATE": "1000",
        "STREAMJOB_WC_AT_LEAST_ONCE": "1" if at_least_once else "0",
        # the negative control publishes (nearly) every batch: a replay surely duplicates
        "STREAMJOB_WC_ROLL_BYTES": "512" if at_least_once else "4096",
    }
    run = WordCountContainers(image, out, seaweedfs_checkpoint_url(), job_env)
    try:
        jm = run.start_jobmanager()
        _, tm0_health, _ = run.start_taskmanager("tm-0")
        victim, tm1_health, _ = run.start_taskmanager("tm-1")
        # the probes the operator renders (a probe under load may time out once: retried)
        run.wait_for(lambda: http_status(f"{run.url}/readyz") == 200, 120, "JobManager /readyz")
        for health in (f"{run.url}/healthz", tm0_health, tm1_health):
            run.wait_for(lambda h=health: http_status(h) == 200, 60, f"200 from {health}")

        job = run.wait_for(
            lambda: (
                (j := run.job()) and j["state"] == "RUNNING" and run.completed(j["id"]) >= 2 and j
            ),
            120,
            "two completed checkpoints of the running job",
        )
        job_id, attempt = job["id"], job["attempt"]
        # the source vertex chains the tokenizer: its records out are words (or lines, unchained)
        emitted = job["source_records"]
        assert 0 < emitted < lines * WORDS_PER_LINE, f"not mid-run: {emitted} records out"
        completed_before = max(2, run.completed(job_id))  # 2 seen above; 0 = no answer

        victim.kill()
        state = victim.state()
        assert not state["Running"] and state["ExitCode"] == 137, state
        assert http_status(tm1_health) is None
        # the replacement pod: the same TaskManager id, a new container and pod uid
        _, replacement_health, replacement_uid = run.start_taskmanager("tm-1")

        run.wait_for(lambda: run.registered(replacement_uid), 90, "the replacement to register")
        restarted = run.wait_for(
            lambda: (j := run.job()) and j["attempt"] > attempt and j["state"] == "RUNNING" and j,
            90,
            "the job to run again after the failover",
        )
        assert restarted["restarts"] >= 1
        restored = run.checkpoints(job_id)["latest"]["restored"]
        assert restored is not None and restored["id"] >= completed_before, restored
        run.wait_for(lambda: http_status(replacement_health) == 200, 60, "the replacement's probe")

        run.wait_for(lambda: (j := run.job()) and j["state"] == "FINISHED", 240, "FINISHED")
        # the image's HEALTHCHECK (every 10 s) agrees with the probes
        run.wait_for(
            lambda: jm.state().get("Health", {}).get("Status") == "healthy",
            60,
            "Docker's HEALTHCHECK to report the JobManager healthy",
        )
    finally:
        logs = run.logs()
        run.close()

    rows = committed(out)
    assert rows, f"no committed output\n{logs}"
    assert {p.stat().st_uid for p in out.glob("part-*")} == {IMAGE_UID}  # written as non-root
    got = Counter((word, n) for word, n in rows)
    want = expected_pairs(lines)
    if not at_least_once:
        duplicates = [pair for pair, c in got.items() if c > 1]
        assert not duplicates, f"{len(duplicates)} duplicates, e.g. {duplicates[:3]}"
        assert got == want, f"missing {sum((want - got).values())} records"
    else:
        assert set(got) == set(want), "the at-least-once sink lost records"
        assert any(c > 1 for c in got.values()), "the at-least-once FileSink showed no duplicates"


# -- the operator ----------------------------------------------------------------------------------
@pytest.mark.timeout(180)
async def test_the_operator_container_reconciles_answers_liveness_and_stops_on_sigterm(
    image: str,
    cluster: Cluster,  # noqa: F811 (the fixture imported above)
) -> None:
    """The chart's command line (``streamjob operator --standalone --liveness=...``) in the image,
    against a kmock API server on 127.0.0.1: it creates the JobManager pod of a StreamJob."""
    port = free_port()
    liveness = f"http://127.0.0.1:{port}/healthz"
    args = ["--log-level", "INFO", "operator", "--kube-server", cluster.url, "--standalone"]
    args += ["--interval", "1", "--jobmanager-address", "pod-ip", f"--liveness={liveness}"]
    operator = await asyncio.to_thread(dk.Container, image, args, name="operator")
    try:

        async def until(what: str, check: Callable[[], Any], timeout: float = 60) -> None:
            def logs() -> str:
                return operator.logs(60)

            await asyncio.to_thread(dk.wait_for, check, timeout, what, logs)

        await until("the liveness endpoint", lambda: http_status(liveness) == 200)
        await cluster.apply("wc", spec_dict())
        await cluster.wait_for(
            "the JobManager pod", lambda: "wc-jobmanager" in cluster.pods(), timeout=60
        )
        await until("the liveness endpoint, reconciling", lambda: http_status(liveness) == 200)
        await asyncio.to_thread(dk.docker, "stop", "--time", "30", operator.id, timeout=60)
        state = await asyncio.to_thread(operator.state)
        assert state["ExitCode"] == 0, f"{state}\n{operator.logs(60)}"
    finally:
        await asyncio.to_thread(operator.remove)
