"""The REST server for real: uvicorn on 127.0.0.1 in the job's loop, and the HTTP client.

Aspects covered:
- ``RestServer(port=0)`` binds a free port on 127.0.0.1 and serves while the job runs in the
  same loop; :class:`JobManagerClient` reads jobs and takes a savepoint through it; after
  ``stop()`` the port no longer answers;
- a port already in use is a clear error naming it;
- the client turns HTTP errors into :class:`RestClientError` with the server's message and
  status, and an unreachable URL into an error naming it.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streamjob import errors
from streamjob.client import JobManagerClient, RestClientError
from streamjob.jobmanager import dto
from streamjob.jobmanager.server import RestServer
from tests.rest.conftest import StartJob


async def test_serves_the_job_and_stops(start_job: StartJob, tmp_path: Path) -> None:
    job = await start_job()
    server = RestServer(job.gateway, port=0)
    url = await server.start()
    try:
        assert url.startswith("http://127.0.0.1:") and server.port > 0
        async with JobManagerClient(url) as client:
            (summary,) = await client.jobs()
            assert summary.id == job.job_id and summary.state is dto.JobState.RUNNING
            trigger = await client.trigger_savepoint(job.job_id, target_dir=str(tmp_path / "sp"))
            status = await client.wait_for_savepoint(job.job_id, trigger, poll_s=0.02)
            assert status.status is dto.OperationStatus.COMPLETED and status.location
            assert (Path(status.location) / "_metadata").is_file()
            with pytest.raises(RestClientError, match=r"409.*distributed runtime") as info:
                await client.rescale(job.job_id, 3)
            assert info.value.status == 409
            with pytest.raises(RestClientError, match="404") as info:
                await client.job("nope")
            assert info.value.status == 404
            action = await client.cancel(job.job_id)
            assert action.state is dto.JobState.CANCELLING
    finally:
        await server.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0
    async with JobManagerClient(url, timeout_s=2) as client:
        with pytest.raises(RestClientError, match="cannot reach") as info:
            await client.overview()
        assert info.value.status is None


async def test_a_port_in_use_is_a_clear_error(start_job: StartJob) -> None:
    job = await start_job(begin=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(errors.StreamJobError, match=f"127.0.0.1:{port}.*--rest-port"):
            await RestServer(job.gateway, port=port).start()
