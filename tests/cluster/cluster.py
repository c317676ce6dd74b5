"""Test access to the mini-cluster: real JobManager/TaskManager processes with logs in tmp."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from streamjob.cluster.minicluster import MiniCluster

ROOT = Path(__file__).resolve().parents[2]


class LocalCluster(MiniCluster):
    def get(self, path: str) -> Any:
        return self.client.get(path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(path, body)


@contextlib.contextmanager
def local_cluster(tmp: Path, env: dict[str, str]) -> Iterator[LocalCluster]:
    cluster = LocalCluster(env=env, log_dir=tmp, cwd=str(ROOT))
    try:
        yield cluster
    finally:
        cluster.close()
