"""The exactly-once fault tests of the checkpoints issue, run with the RocksDB backend.

Every checkpoint here is incremental and native (the asserts check that the restored
checkpoint holds RocksDB handles, not canonical ones). Aspects covered (DESIGN.md section 10):

- a crash mid-stream at parallelism 1 and 2: failover from the latest incremental checkpoint,
  committed output equal to the failure-free run, keyed records on the subtask owning their key
  group, a real restore (checkpoint id > 0, source positions > 0, fewer records replayed);
- each named fault point (after snapshot, mid-upload, before acknowledgement, after
  ``_metadata`` before notification, during notification) and a fault during the restore;
- a crash with no restart, then a new run on the same directory resumes;
- negative control: with restore disabled the output is wrong, so the tests can fail.

The helpers here (a RAM-disk working directory for the databases, ``run_rocksdb``) are shared by
the other ``test_rocksdb_*`` modules.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from streamjob import errors
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.restart import FixedDelayRestart, NoRestart
from streamjob.execution.results import JobRunResult
from streamjob.testing import TestingSink, run_local
from tests.checkpoint.jobs import (
    Progress,
    assert_exactly_once,
    assert_keyed_placement,
    keyed_count,
)

EVENTS = 8000
RATE = 8000
"""Slower than the hashmap tests' 20,000/s: a RocksDB checkpoint (memtable flush, hard links,
fsynced uploads) takes tens of milliseconds more, and crashes wait for two of them."""


@pytest.fixture(autouse=True)
def rocksdb_workdirs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The backends' databases go to a RAM disk when there is one (RocksDB fsyncs each new
    database, about 50 ms here); checkpoints stay on ``tmp_path``."""
    shm = pathlib.Path("/dev/shm")
    if not shm.is_dir():
        yield
        return
    directory = tempfile.mkdtemp(prefix="streamjob-test-", dir=shm)
    monkeypatch.setattr(tempfile, "tempdir", directory)
    yield
    shutil.rmtree(directory, ignore_errors=True)


def run_rocksdb(
    sink: TestingSink, directory: pathlib.Path | str, p: int, **kwargs: Any
) -> JobRunResult:
    """W1 in small with the RocksDB backend, checkpointing every 50 ms into ``directory``."""
    progress = Progress()
    faults = kwargs.pop("faults", None) or FaultInjector()
    progress.attach(faults)
    job = keyed_count(
        sink,
        events=kwargs.pop("events", EVENTS),
        rate=RATE,
        crash_at=kwargs.pop("crash_at", None),
        progress=progress,
    )
    return run_local(
        job,
        parallelism=p,
        faults=faults,
        checkpoint_dir=str(directory),
        checkpoint_interval_ms=50,
        restart=kwargs.pop("restart", FixedDelayRestart(attempts=3, delay_s=0.0)),
        state_backend="rocksdb",
        **kwargs,
    )


def latest_metadata(directory: pathlib.Path) -> CheckpointMetadata:
    (job,) = [d for d in directory.iterdir() if d.is_dir()]
    newest = max(job.glob("chk-*/_metadata"), key=lambda p: int(p.parent.name[4:]))
    return CheckpointMetadata.from_bytes(newest.read_bytes(), location=str(newest))


def assert_real_restore(result: JobRunResult, *, events: int = EVENTS) -> None:
    attempts = result.attempts
    assert len(attempts) >= 2, "the job never failed over"
    restored = attempts[-1]
    assert restored.restored_checkpoint_id is not None and restored.restored_checkpoint_id > 0
    positions = [pos for splits in restored.restored_positions.values() for _, pos in splits]
    assert positions and sum(positions) > 0, "the restored source positions are all zero"
    assert restored.source_records < events, "the restore replayed everything"
    keyed = [s for s in restored.restore_per_task.values() if s.native_bases]
    assert keyed, "no task restored native RocksDB state"


def assert_incremental(directory: pathlib.Path) -> None:
    meta = latest_metadata(directory)
    count = meta.operator("count")
    assert count is not None
    assert count.incremental_handles and not count.keyed_handles
    assert all(h.backend == "rocksdb" and h.shared for h in count.incremental_handles)


@pytest.mark.parametrize("p", [1, 2])
def test_crash_mid_stream_fails_over_exactly_once(tmp_path: pathlib.Path, p: int) -> None:
    sink = TestingSink()
    result = run_rocksdb(sink, tmp_path / "chk", p, crash_at=EVENTS // 10)
    assert_real_restore(result)
    assert_exactly_once(sink, EVENTS)
    assert_keyed_placement(sink, p)
    assert_incremental(tmp_path / "chk")


@pytest.mark.parametrize(
    "point",
    ["after_snapshot", "mid_upload", "before_ack", "after_metadata", "during_notify"],
)
def test_named_fault_points(tmp_path: pathlib.Path, point: str) -> None:
    faults = FaultInjector()
    faults.arm(point, when=lambda ctx: ctx.get("checkpoint_id", 0) >= 2)
    sink = TestingSink()
    result = run_rocksdb(sink, tmp_path / "chk", 2, faults=faults)
    assert faults.fired, f"fault point {point} was never reached"
    assert_real_restore(result)
    assert_exactly_once(sink, EVENTS)


def test_fault_during_restore_retries_the_restore(tmp_path: pathlib.Path) -> None:
    faults = FaultInjector()
    faults.arm("during_restore")
    sink = TestingSink()
    result = run_rocksdb(sink, tmp_path / "chk", 2, crash_at=EVENTS // 10, faults=faults)
    assert faults.fired
    assert len(result.attempts) >= 3
    assert_exactly_once(sink, EVENTS)


def test_a_new_run_on_the_same_directory_resumes(tmp_path: pathlib.Path) -> None:
    sink = TestingSink()
    with pytest.raises(errors.JobFailedError, match="simulated crash"):
        run_rocksdb(sink, tmp_path / "chk", 2, crash_at=EVENTS // 10, restart=NoRestart())
    assert 0 < len(sink.committed) < EVENTS
    result = run_rocksdb(sink, tmp_path / "chk", 2)
    first = result.attempts[0]
    assert first.restored_checkpoint_id is not None and first.restored_checkpoint_id > 0
    assert first.source_records < EVENTS
    assert_exactly_once(sink, EVENTS)


def test_negative_control_restore_disabled_gives_wrong_output(tmp_path: pathlib.Path) -> None:
    faults = FaultInjector()
    faults.arm(
        "after_snapshot",
        when=lambda ctx: ctx["checkpoint_id"] >= 3 and "Sink" in ctx["task"],
    )
    sink = TestingSink()
    run_rocksdb(sink, tmp_path / "chk", 2, faults=faults, restore=False)
    assert faults.fired
    with pytest.raises(AssertionError, match="duplicated"):
        assert_exactly_once(sink, EVENTS)
