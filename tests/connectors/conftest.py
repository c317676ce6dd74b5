"""Where the file sink tests write: a local directory, or a prefix on a real SeaweedFS.

``sink_location`` is parametrized over both; the SeaweedFS one uses the session's shared
server (``tests/conftest.py``) with explicit :class:`S3Options`, and is marked ``seaweedfs``.
Each test gets a fresh directory or prefix. ``SinkLocation.file_sink(...)`` builds a
:class:`FileSink` writing there; ``.storage()`` opens the same place for inspection.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamjob.connectors.file_sink import FileSink
from streamjob.storage import base, factory, options, seaweedfs
from tests.conftest import SHARED_BUCKET


@dataclasses.dataclass(frozen=True)
class SinkLocation:
    backend: str
    url: str
    options: options.S3Options | None = None

    def file_sink(self, **kwargs: Any) -> FileSink:
        kwargs.setdefault("encoder", json.dumps)
        return FileSink(self.url, storage_options=self.options, **kwargs)

    def storage(self) -> base.CheckpointStorage:
        return factory.open_storage(self.url, self.options)

    def finished_files(self, prefix: str = "part-") -> dict[str, bytes]:
        with self.storage() as storage:
            return {o.key: storage.get(o.key) for o in storage.list(prefix)}

    def finished_rows(self, prefix: str = "part-") -> list[tuple[Any, ...]]:
        """Every line of every finished part file, decoded from JSON into a tuple."""
        rows = []
        for data in self.finished_files(prefix).values():
            rows.extend(tuple(json.loads(line)) for line in data.decode().splitlines())
        return rows

    def in_progress_uploads(self, prefix: str = "part-") -> list[str]:
        with self.storage() as storage:
            return [u.key for u in storage.list_multipart_uploads(prefix)]


def seaweedfs_location(server: seaweedfs.SeaweedFSServer) -> SinkLocation:
    opts = options.S3Options(
        endpoint_url=server.endpoint_url,
        region=server.region,
        path_style=True,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        max_attempts=2,
    )
    return SinkLocation("seaweedfs", f"s3://{SHARED_BUCKET}/sink-{uuid.uuid4().hex[:12]}", opts)


@pytest.fixture(
    params=[
        pytest.param("local", id="local"),
        pytest.param("seaweedfs", id="seaweedfs", marks=pytest.mark.seaweedfs),
    ]
)
def sink_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SinkLocation]:
    if request.param == "local":
        yield SinkLocation("local", str(tmp_path / "out"))
    else:
        yield seaweedfs_location(request.getfixturevalue("shared_seaweedfs"))
