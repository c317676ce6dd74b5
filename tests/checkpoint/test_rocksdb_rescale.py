"""Rescaling and backend changes with the RocksDB backend.

Aspects covered:
- stop-with-savepoint at parallelism 2, resume at 3, stop again, resume at 1 (the rescale test of
  the checkpoints issue, with RocksDB): exactly once, every record on the subtask owning its key
  group at its leg's parallelism; savepoints are canonical even with RocksDB;
- rescaling through incremental checkpoints, 2 -> 3 -> 1 (crash, then a new run at another
  parallelism on the same directory): each restore rebuilds the databases from the old native
  handles (largest overlap, ``delete_range``, SST ingestion), output exactly once, and each
  leg's records on the owners of their key groups (a leg first commits the transactions it
  restored, which ran at the previous leg's parallelism);
- switching backends goes through a savepoint, both ways (hashmap -> RocksDB -> hashmap);
  restoring a native checkpoint with the hashmap backend fails, naming the savepoint route.
"""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from streamjob import errors, keygroups
from streamjob.checkpoint.restart import NoRestart
from streamjob.testing import TestingSink
from tests.checkpoint.jobs import assert_exactly_once, assert_keyed_placement
from tests.checkpoint.test_rescale import EVENTS as SAVEPOINT_EVENTS
from tests.checkpoint.test_rescale import _env, _run_until_stopped
from tests.checkpoint.test_rocksdb_exactly_once import (
    EVENTS,
    latest_metadata,
    rocksdb_workdirs,
    run_rocksdb,
)

__all__ = ["rocksdb_workdirs"]  # the autouse fixture, imported to apply here too


def _placed(sink: TestingSink, start: int, end: int, p: int) -> None:
    part = TestingSink()
    part.committed = sink.committed[start:end]
    assert_keyed_placement(part, p)


def test_stop_with_savepoint_then_rescale_2_3_1(tmp_path: pathlib.Path) -> None:
    sink = TestingSink()
    third = SAVEPOINT_EVENTS // 3

    def env(p: int, name: str, savepoint: str | None = None) -> object:
        built = _env(sink, p, tmp_path / name, from_savepoint=savepoint)
        built.config.state_backend = "rocksdb"
        return built

    sp1, _ = asyncio.run(_run_until_stopped(env(2, "a"), tmp_path / "sp", third))  # type: ignore[arg-type]
    leg1 = len(sink.committed)
    sp2, r2 = asyncio.run(_run_until_stopped(env(3, "b", sp1), tmp_path / "sp", third))  # type: ignore[arg-type]
    leg2 = len(sink.committed)
    r3 = asyncio.run(env(1, "c", sp2).create_runner().run())  # type: ignore[attr-defined]
    assert r3.state == "FINISHED"
    assert_exactly_once(sink, SAVEPOINT_EVENTS)
    assert r2.attempts[0].restored_from == sp1
    assert 0 < r2.attempts[0].source_records < SAVEPOINT_EVENTS
    for start, end, p in ((0, leg1, 2), (leg1, leg2, 3), (leg2, len(sink.committed), 1)):
        _placed(sink, start, end, p)
    for savepoint in (sp1, sp2):
        meta = latest_metadata_of(pathlib.Path(savepoint))
        count = meta.operator("count")
        assert count is not None and count.keyed_handles and not count.incremental_handles


def latest_metadata_of(savepoint: pathlib.Path) -> object:
    from streamjob.checkpoint.metadata import CheckpointMetadata

    data = (savepoint / "_metadata").read_bytes()
    return CheckpointMetadata.from_bytes(data, location=str(savepoint))


def test_rescale_through_incremental_checkpoints_2_3_1(tmp_path: pathlib.Path) -> None:
    sink = TestingSink()
    directory = tmp_path / "chk"
    with pytest.raises(errors.JobFailedError, match="simulated crash"):
        run_rocksdb(sink, directory, 2, crash_at=EVENTS // 10, restart=NoRestart())
    leg1 = len(sink.committed)
    assert latest_metadata(directory).operator("count").incremental_handles  # type: ignore[union-attr]
    with pytest.raises(errors.JobFailedError, match="simulated crash"):
        run_rocksdb(sink, directory, 3, crash_at=EVENTS // 2, restart=NoRestart())
    leg2 = len(sink.committed)
    handles = latest_metadata(directory).operator("count").incremental_handles  # type: ignore[union-attr]
    assert len(handles) == 3
    result = run_rocksdb(sink, directory, 1)
    restored = result.attempts[0]
    assert restored.restored_checkpoint_id is not None and restored.source_records < EVENTS
    assert any(s.native_bases for s in restored.restore_per_task.values())
    assert_exactly_once(sink, EVENTS)
    _placed(sink, 0, leg1, 2)
    # a leg first commits the transactions restored from the previous leg's checkpoint
    for start, end, p, before in ((leg1, leg2, 3, 2), (leg2, len(sink.committed), 1, 3)):
        own = [r for r in sink.committed[start:end] if _on_owner(r, p)]
        assert all(_on_owner(r, p) or _on_owner(r, before) for r in sink.committed[start:end])
        assert any(not _on_owner(r, before) for r in own), f"nothing ran at parallelism {p}"


def _on_owner(record: tuple[str, int, int], p: int) -> bool:
    key, _, subtask = record
    kg = keygroups.assign_to_key_group(key, 128)
    return subtask == keygroups.operator_index_for_key_group(128, p, kg)


def test_backends_switch_through_savepoints(tmp_path: pathlib.Path) -> None:
    sink = TestingSink()
    third = SAVEPOINT_EVENTS // 3
    legs = []
    savepoint = None
    for n, backend in enumerate(["hashmap", "rocksdb", "hashmap"]):
        env = _env(sink, 2, tmp_path / f"leg{n}", from_savepoint=savepoint)
        env.config.state_backend = backend
        if n < 2:
            savepoint, result = asyncio.run(_run_until_stopped(env, tmp_path / "sp", third))
        else:
            result = asyncio.run(env.create_runner().run())
        legs.append(result)
    assert legs[1].attempts[0].restored_from is not None
    assert legs[2].state == "FINISHED"
    assert_exactly_once(sink, SAVEPOINT_EVENTS)


def test_the_hashmap_backend_refuses_a_native_checkpoint_naming_the_savepoint_route(
    tmp_path: pathlib.Path,
) -> None:
    sink = TestingSink()
    directory = tmp_path / "chk"
    with pytest.raises(errors.JobFailedError, match="simulated crash"):
        run_rocksdb(sink, directory, 2, crash_at=EVENTS // 10, restart=NoRestart())
    from streamjob.testing import run_local
    from tests.checkpoint.jobs import keyed_count

    with pytest.raises(errors.RestoreError, match=r"native rocksdb state.*savepoint") as info:
        run_local(
            keyed_count(TestingSink(), events=EVENTS),
            parallelism=2,
            checkpoint_dir=str(directory),
            checkpoint_interval_ms=50,
            restart=NoRestart(),
        )
    assert "--state-backend rocksdb" in str(info.value)
