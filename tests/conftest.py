"""Fixtures shared by every suite: one real SeaweedFS server per test session.

``seaweedfs_checkpoint_url`` gives a fresh ``s3://bucket/prefix`` on it and points the standard
AWS environment variables (endpoint, credentials, path style) at the server, exactly as a user
of the CLI would. The server binds 127.0.0.1, has telemetry off, and is stopped and deleted at
the end of the session (see ``streamjob.storage.seaweedfs``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from streamjob.storage import seaweedfs

SHARED_BUCKET = "streamjob-shared"


@pytest.fixture(scope="session")
def shared_seaweedfs() -> Iterator[seaweedfs.SeaweedFSServer]:
    with seaweedfs.running_seaweedfs(buckets=[SHARED_BUCKET]) as server:
        yield server


@pytest.fixture
def seaweedfs_checkpoint_url(
    shared_seaweedfs: seaweedfs.SeaweedFSServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], str]:
    server = shared_seaweedfs
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", server.region)
    monkeypatch.setenv("STREAMJOB_S3_PATH_STYLE", "true")

    def make() -> str:
        return f"s3://{SHARED_BUCKET}/{uuid.uuid4().hex[:12]}"

    return make
