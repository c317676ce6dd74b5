"""Fixtures of the storage contract suite: one ``storage`` fixture, three backends.

* ``local``: a :class:`LocalStorage` in a fresh temp directory;
* ``moto``: :class:`S3Storage` against moto's ``ThreadedMotoServer`` (session-scoped);
* ``seaweedfs``: :class:`S3Storage` against a real ``weed mini`` started once per session by
  :func:`streamjob.storage.seaweedfs.running_seaweedfs` (127.0.0.1 only, telemetry off, every
  port chosen free, stopped and deleted afterwards, killed at interpreter exit). If ``weed``
  cannot start, the fixture fails: it never skips.

Each S3 test gets its own key prefix in a shared bucket, so tests never see each other's keys.
``make_storage`` builds further storages on the same backend (second writer, wrong options).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
from moto.server import ThreadedMotoServer

from streamjob.storage import base, local, options, s3, seaweedfs

BUCKET = "streamjob-test"
BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("moto", id="moto"),
    pytest.param("seaweedfs", id="seaweedfs", marks=pytest.mark.seaweedfs),
]

StorageMaker = Callable[..., base.CheckpointStorage]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = s3.make_client(moto_options(endpoint))
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def moto_options(endpoint: str, **changes: object) -> options.S3Options:
    base_options = options.S3Options(
        endpoint_url=endpoint,
        region="us-east-1",
        path_style=True,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=2,
    )
    return base_options.replace(**changes)


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[seaweedfs.SeaweedFSServer]:
    with seaweedfs.running_seaweedfs(buckets=[BUCKET]) as server:
        yield server


def seaweedfs_options(server: seaweedfs.SeaweedFSServer, **changes: object) -> options.S3Options:
    return options.S3Options(
        endpoint_url=server.endpoint_url,
        region=server.region,
        path_style=True,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        max_attempts=2,
    ).replace(**changes)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def s3_options(backend: str, request: pytest.FixtureRequest) -> options.S3Options | None:
    """The options reaching this test's S3 backend (None for local)."""
    if backend == "moto":
        return moto_options(request.getfixturevalue("moto_endpoint"))
    if backend == "seaweedfs":
        return seaweedfs_options(request.getfixturevalue("seaweedfs_server"))
    return None


@pytest.fixture
def make_storage(
    backend: str, s3_options: options.S3Options | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorageMaker]:
    """``make_storage(bucket=..., **option_changes)``: a storage rooted at this test's prefix."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    root = tmp_path_factory.mktemp("storage")
    made: list[base.CheckpointStorage] = []

    def make(*, bucket: str = BUCKET, **changes: object) -> base.CheckpointStorage:
        storage: base.CheckpointStorage
        if s3_options is None:
            storage = local.LocalStorage(root)
        else:
            storage = s3.S3Storage(bucket, prefix, s3_options.replace(**changes))
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


@pytest.fixture
def storage(make_storage: StorageMaker) -> base.CheckpointStorage:
    return make_storage()
