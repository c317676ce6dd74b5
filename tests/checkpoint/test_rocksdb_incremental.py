"""Incremental RocksDB checkpoints: what is uploaded, what is kept, what a restore gives back.

Aspects covered (DESIGN.md sections 6 and 10):

- byte counter: the checkpoint after changing 1 % of the keys uploads less than 10 % of a full
  one (a storage wrapper counts the bytes written);
- a restored state equals the state before the failure, key by key, for every state kind in
  the void and a window namespace, at the same parallelism and rescaled, from a first and from
  an incremental second checkpoint (which reuses the first's unchanged files, and whose
  deletions stay deleted);
- deleting a referenced shared file makes the restore fail loudly, naming the file;
- shared files are deleted only when no retained checkpoint references them, so after a run the
  ``shared/`` folder holds exactly the retained checkpoints' files (retained 1 and 3), and an
  unreferenced shared file left behind is garbage at the next start;
- the shared-file registry's rule for pending checkpoints (a released checkpoint stays known
  while a later one may still reuse its files);
- ``incremental=False`` and savepoints give canonical handles with RocksDB.
"""

from __future__ import annotations

import pathlib
import random
from typing import Any

import pytest

from streamjob import GeneratorSource, StreamEnvironment, errors, keygroups
from streamjob.checkpoint import incremental
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.metadata import CheckpointMetadata, OperatorMetadata
from streamjob.checkpoint.restart import NoRestart
from streamjob.checkpoint.shared_registry import SharedStateRegistry
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import BytesSerializer, ValueStateDescriptor
from streamjob.state.rocksdb import RocksDBOptions, RocksDBStateBackend
from streamjob.storage.counting import CountingStorage
from streamjob.storage.local import LocalStorage
from streamjob.testing import TestingSink, run_local
from tests.checkpoint.test_rocksdb_exactly_once import (
    EVENTS,
    latest_metadata,
    rocksdb_workdirs,
    run_rocksdb,
)
from tests.state.test_backend_contract_snapshots import KEYS, populate, read_all

__all__ = ["rocksdb_workdirs"]  # the autouse fixture, imported to apply here too

# -- byte counter -------------------------------------------------------------------------------

PROFILES = 5_000
PROFILE_BYTES = 400


class StoreProfile(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.profile = runtime_context.get_state(
            ValueStateDescriptor("profile", serializer=BytesSerializer())
        )

    def process_element(self, value: Any, ctx: Any) -> Any:
        self.profile.update(value[1])
        return None


def _profile(i: int, version: int) -> tuple[str, bytes]:
    return f"user-{i}", random.Random(i * 7 + version).randbytes(PROFILE_BYTES)


def _profiles_job(records: list[tuple[str, bytes]]) -> Any:
    def build(env: StreamEnvironment) -> None:
        (
            env.from_source(GeneratorSource(lambda i: records[i], count=len(records)))
            .uid("profiles")
            .key_by(lambda r: r[0])
            .process(StoreProfile())
            .uid("store")
            .sink_to(TestingSink())
        )

    return build


def test_a_checkpoint_after_changing_1_percent_of_keys_uploads_under_10_percent(
    tmp_path: pathlib.Path,
) -> None:
    counting = CountingStorage(LocalStorage(str(tmp_path / "chk")))
    full = [_profile(i, 0) for i in range(PROFILES)]
    changed = [_profile(i, 1) for i in range(0, PROFILES, 100)]
    written = []
    for records in (full, changed):
        before = counting.bytes_written
        run_local(
            _profiles_job(records),
            parallelism=2,
            checkpoint_dir=str(tmp_path / "chk"),
            checkpoint_interval_ms=600_000,  # only the final checkpoint of each run
            storage=counting,
            state_backend="rocksdb",
        )
        written.append(counting.bytes_written - before)
    full_bytes, incremental_bytes = written
    assert full_bytes > PROFILES * PROFILE_BYTES, "the first checkpoint holds every profile"
    assert incremental_bytes < full_bytes / 10, (incremental_bytes, full_bytes)
    meta = latest_metadata(tmp_path / "chk")
    store = meta.operator("store")
    assert store is not None and all(h.base_checkpoint_id for h in store.incremental_handles)


# -- key by key ---------------------------------------------------------------------------------

MAX_P = 128


class _Context:
    def __init__(self, uid: str, kg_range: keygroups.KeyGroupRange) -> None:
        self.uid = uid
        self.key_group_range = kg_range


class _Operator:
    """What the checkpoint layer reads of a keyed operator."""

    def __init__(self, backend: RocksDBStateBackend) -> None:
        self.backend = backend
        self.ctx = _Context("op", backend.key_group_range)


def _backend(kg_range: keygroups.KeyGroupRange) -> RocksDBStateBackend:
    return RocksDBStateBackend(
        max_parallelism=MAX_P, key_group_range=kg_range, options=RocksDBOptions(cache_entries=50)
    )


def _checkpoint(
    storage: LocalStorage,
    backends: list[RocksDBStateBackend],
    trackers: list[incremental.UploadTracker],
    checkpoint_id: int,
) -> tuple[OperatorMetadata, int]:
    """Take and upload a native checkpoint of every backend, as the task side does."""
    handles = []
    written = 0
    for subtask, (backend, tracker) in enumerate(zip(backends, trackers, strict=True)):
        kg_range = backend.key_group_range
        handle, size = incremental.upload(
            storage,
            backend.native_checkpoint(checkpoint_id),
            target=incremental.NativeUpload(
                "op", subtask, checkpoint_id, (kg_range.start, kg_range.end), "rocksdb"
            ),
            base=tracker.base,
            sections=None,
        )
        tracker.uploaded(checkpoint_id, handle)
        tracker.notify_complete(checkpoint_id)
        handles.append(handle)
        written += size
    meta = OperatorMetadata(uid="op", name="op", parallelism=len(backends), max_parallelism=MAX_P)
    meta.incremental_handles = handles
    return meta, written


def _restore(storage: LocalStorage, meta: OperatorMetadata, p: int) -> list[RocksDBStateBackend]:
    restored = []
    for i in range(p):
        backend = _backend(keygroups.KeyGroupRange.of_operator(i, p, MAX_P))
        adopted, _, _ = incremental.restore(_Operator(backend), meta, storage)
        assert adopted is not None
        restored.append(backend)
    return restored


def _state_by_key(backends: list[RocksDBStateBackend], p: int) -> dict[str, Any]:
    from tests.state.test_backend_contract_snapshots import descriptors

    for backend in backends:
        for d in descriptors():
            backend.get_state(d)
    seen = {}
    for key in KEYS:
        kg = keygroups.assign_to_key_group(key, MAX_P)
        seen[repr(key)] = read_all(
            backends[keygroups.operator_index_for_key_group(MAX_P, p, kg)], key
        )
    return seen


def test_a_restored_state_equals_the_state_before_the_failure_key_by_key(
    tmp_path: pathlib.Path,
) -> None:
    storage = LocalStorage(str(tmp_path / "storage"))
    old = [_backend(keygroups.KeyGroupRange.of_operator(i, 2, MAX_P)) for i in range(2)]
    trackers = [incremental.UploadTracker(), incremental.UploadTracker()]
    for backend in old:
        populate(
            backend,
            [k for k in KEYS if keygroups.assign_to_key_group(k, MAX_P) in backend.key_group_range],
        )
    first, first_bytes = _checkpoint(storage, old, trackers, 1)
    before_first = _state_by_key(old, 2)
    # change a few keys (values, list appends, a cleared map, a removed key), then checkpoint again
    changed = KEYS[::10]
    for key in changed:
        kg = keygroups.assign_to_key_group(key, MAX_P)
        backend = old[keygroups.operator_index_for_key_group(MAX_P, 2, kg)]
        states = {d.name: backend.get_state(d) for d in _descriptors()}
        backend.set_current_key(key)
        states["value"].update({"changed": str(key)})
        states["list"].add("appended")
        states["map"].clear()
        states["reducing"].clear()
    second, second_bytes = _checkpoint(storage, old, trackers, 2)
    before_second = _state_by_key(old, 2)
    assert second_bytes < first_bytes, "the second checkpoint reused the first's files"
    reused = {f.path for h in first.incremental_handles for f in h.shared}
    assert reused & {f.path for h in second.incremental_handles for f in h.shared}
    for meta, expected in ((first, before_first), (second, before_second)):
        for p in (2, 3):
            restored = _restore(storage, meta, p)
            assert _state_by_key(restored, p) == expected
            for backend in restored:
                backend.dispose()
    assert before_second != before_first
    for backend in old:
        backend.dispose()


def _descriptors() -> list[Any]:
    from tests.state.test_backend_contract_snapshots import descriptors

    return descriptors()


# -- shared files -------------------------------------------------------------------------------


def _shared_on_storage(directory: pathlib.Path) -> set[str]:
    (job,) = [d for d in directory.iterdir() if d.is_dir()]
    return {f"shared/{f.name}" for f in (job / "shared").iterdir()}


def test_deleting_a_referenced_shared_file_fails_the_restore_loudly(
    tmp_path: pathlib.Path,
) -> None:
    directory = tmp_path / "chk"
    with pytest.raises(errors.JobFailedError, match="simulated crash"):
        run_rocksdb(TestingSink(), directory, 2, crash_at=EVENTS // 10, restart=NoRestart())
    meta = latest_metadata(directory)
    victim = sorted(meta.shared_files())[0]
    (job,) = [d for d in directory.iterdir() if d.is_dir()]
    (job / victim).unlink()
    with pytest.raises(errors.CheckpointCorruptError) as info:
        run_rocksdb(TestingSink(), directory, 2)
    message = str(info.value)
    assert victim in message and "does not exist" in message
    assert "Refusing to fall back" in message


@pytest.mark.parametrize("retained", [1, 3])
def test_shared_files_live_exactly_as_long_as_a_checkpoint_references_them(
    tmp_path: pathlib.Path, retained: int
) -> None:
    directory = tmp_path / "chk"
    ever: set[str] = set()
    faults = FaultInjector()

    def seen(ctx: dict[str, Any]) -> None:
        ever.update(latest_metadata(directory).shared_files())

    faults.observe("after_metadata", seen)
    result = run_rocksdb(TestingSink(), directory, 2, faults=faults, retained=retained)
    assert len(result.checkpoints) > retained + 3
    (job,) = [d for d in directory.iterdir() if d.is_dir()]
    kept = sorted(job.glob("chk-*/_metadata"))
    assert len(kept) == retained
    referenced: set[str] = set()
    for path in kept:
        referenced |= CheckpointMetadata.from_bytes(path.read_bytes(), location="").shared_files()
    assert _shared_on_storage(directory) == referenced
    assert ever - referenced, "no shared file was ever released (no compaction happened?)"


def test_an_unreferenced_shared_file_is_garbage_at_the_next_start(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "chk"
    with pytest.raises(errors.JobFailedError, match="simulated crash"):
        run_rocksdb(TestingSink(), directory, 2, crash_at=EVENTS // 10, restart=NoRestart())
    (job,) = [d for d in directory.iterdir() if d.is_dir()]
    stale = job / "shared" / "op-0-stale-000001.sst"
    stale.write_bytes(b"left by a checkpoint that never completed")
    run_rocksdb(TestingSink(), directory, 2)
    assert not stale.exists()
    assert _shared_on_storage(directory) == latest_metadata(directory).shared_files()


def test_a_released_checkpoint_stays_known_while_a_pending_one_may_reuse_its_files() -> None:
    registry = SharedStateRegistry()
    registry.register(1, {"a", "b"}, floor=1)
    registry.register(2, {"a", "c"}, floor=1)  # its subtasks based it on checkpoint 1
    assert registry.release([1]) == [], "a checkpoint based on 2 may still reuse b"
    registry.register(3, {"c", "d"}, floor=2)
    assert registry.release([2]) == ["b"], "nothing after 3 reuses files older than 2"
    registry.register(4, {"d"}, floor=4)
    assert registry.release([3]) == ["a", "c"]
    assert registry.referenced() == {"d"}
    assert registry.unreferenced(["d", "old"]) == ["old"]


# -- canonical with RocksDB ---------------------------------------------------------------------


def test_incremental_false_takes_canonical_checkpoints(tmp_path: pathlib.Path) -> None:
    sink = TestingSink()
    run_rocksdb(sink, tmp_path / "chk", 2, incremental=False)
    count = latest_metadata(tmp_path / "chk").operator("count")
    assert count is not None and count.keyed_handles and not count.incremental_handles
