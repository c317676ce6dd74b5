"""RocksDB incremental checkpoints on the distributed runtime (real processes on loopback).

The JobManager runs the same checkpoint driver as a local run, with the shared-file registry:
TaskManagers upload only new SST files under ``shared/``, later checkpoints reuse earlier
uploads, a failover restores from an incremental checkpoint and bases new ones on it, and
retention deletes the shared files no retained checkpoint references (and none that one does).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.store import CheckpointStore
from streamjob.storage.factory import open_storage
from tests.cluster.cluster import local_cluster
from tests.cluster.test_processes import JOB, _check, _completed, _job_env, _restored_id


def _retained(chk: Path) -> tuple[CheckpointStore, list[CheckpointMetadata]]:
    (job_dir,) = [d for d in chk.iterdir() if d.is_dir()]
    store = CheckpointStore(open_storage(str(job_dir)), job_dir.name)
    return store, [store.read(cid) for cid in store.listing().completed]


@pytest.mark.timeout(240)
def test_incremental_rocksdb_checkpoints_fail_over_exactly_once_and_leave_no_garbage(
    tmp_path: Path,
) -> None:
    events = 30000
    out, env = _job_env(tmp_path, events, rate=8000)
    chk = tmp_path / "chk"
    with local_cluster(tmp_path, env) as cluster:
        cluster.start_jobmanager(
            JOB,
            "-p",
            "2",
            "--checkpoint-dir",
            str(chk),
            "--checkpoint-interval",
            "0.2",
            "--retained",
            "2",
            "--state-backend",
            "rocksdb",
            "--heartbeat-timeout",
            "2",
            "--restart-strategy",
            "fixed-delay:5:0.2",
        )
        cluster.start_taskmanager()
        victim = cluster.start_taskmanager()
        cluster.wait_for(lambda: _completed(cluster) >= 3, 60, "three completed checkpoints")
        # while running: the retained checkpoints are native and reuse earlier uploads
        _, running = _retained(chk)
        handles = [h for meta in running for op in meta.operators for h in op.incremental_handles]
        assert handles, "the cluster took canonical checkpoints of RocksDB state"
        assert any(h.base_checkpoint_id for h in handles), "no checkpoint reused an earlier one"
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        cluster.start_taskmanager()  # the replacement pod
        cluster.wait_for(
            lambda: (r := _restored_id(cluster)) is not None and r >= 3, 60, "the failover"
        )
        assert cluster.wait_exit(150) == 0, cluster.logs()
    _check(out, events)
    store, retained = _retained(chk)
    assert 1 <= len(retained) <= 2
    referenced = set().union(*(meta.shared_files() for meta in retained))
    assert referenced, "the final checkpoints reference no shared files"
    on_disk = set(store.shared_files())
    assert referenced <= on_disk, f"retention deleted referenced files: {referenced - on_disk}"
    assert on_disk <= referenced, f"unreferenced shared files left: {sorted(on_disk - referenced)}"
