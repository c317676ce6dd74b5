"""Bad checkpoints and bad settings get clear errors and lose nothing.

Aspects covered: a changed explicit max parallelism is refused naming both values; an
unreadable latest checkpoint fails the start naming it and the previous one, unless the
explicit override is given; a deleted state file fails the restore loudly; state of an operator
that no longer exists needs ``allow_non_restored_state``; storage that ignores put-if-absent is
refused for exactly-once; a missing bucket names endpoint and bucket; a failed checkpoint within
the tolerable count does not fail the job; checkpoint ids keep increasing across runs; a job
never deletes the savepoint it restored from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamjob import StreamEnvironment, errors
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import NoRestart
from streamjob.storage.counting import CountingStorage
from streamjob.storage.info import StorageCapabilities
from streamjob.storage.local import LocalStorage
from streamjob.testing import TestingSink, run_local
from tests.checkpoint.jobs import assert_exactly_once, keyed_count

EVENTS = 3000


def _run(sink: TestingSink, directory: str, **kwargs: Any) -> Any:
    return run_local(
        keyed_count(sink, events=EVENTS, rate=kwargs.pop("rate", 30_000)),
        parallelism=kwargs.pop("parallelism", 2),
        checkpoint_dir=directory,
        checkpoint_interval_ms=kwargs.pop("interval", 50),
        restart=kwargs.pop("restart", NoRestart()),
        **kwargs,
    )


def _job_root(directory: Path) -> Path:
    (root,) = [p for p in directory.iterdir() if p.name.startswith("job-")]
    return root


def _checkpoints(directory: Path) -> list[int]:
    return sorted(int(p.name[4:]) for p in _job_root(directory).glob("chk-*"))


def test_changed_max_parallelism_is_refused_naming_both(tmp_path: Path) -> None:
    _run(TestingSink(), str(tmp_path))
    with pytest.raises(errors.RestoreError, match=r"max parallelism 128.*now has 256"):
        _run(TestingSink(), str(tmp_path), max_parallelism=256)


def test_corrupt_latest_checkpoint_fails_naming_both_unless_overridden(tmp_path: Path) -> None:
    _run(TestingSink(), str(tmp_path), retained=2)
    ids = _checkpoints(tmp_path)
    assert len(ids) == 2
    (_job_root(tmp_path) / f"chk-{ids[-1]}" / "_metadata").write_bytes(b"{not json")
    with pytest.raises(errors.CheckpointCorruptError) as info:
        _run(TestingSink(), str(tmp_path))
    text = str(info.value)
    assert f"chk-{ids[-1]}" in text and f"chk-{ids[-2]}" in text
    assert "--allow-checkpoint-fallback" in text
    result = _run(TestingSink(), str(tmp_path), allow_checkpoint_fallback=True)
    assert result.attempts[0].restored_checkpoint_id == ids[-2]


def test_a_deleted_state_file_fails_the_restore_loudly(tmp_path: Path) -> None:
    _run(TestingSink(), str(tmp_path))
    (cid,) = _checkpoints(tmp_path)
    victim = next((_job_root(tmp_path) / f"chk-{cid}").glob("*.kg"))
    victim.unlink()
    with pytest.raises(errors.CheckpointCorruptError, match=victim.name):
        _run(TestingSink(), str(tmp_path))


def test_state_of_a_removed_operator_needs_allow_non_restored_state(tmp_path: Path) -> None:
    _run(TestingSink(), str(tmp_path))

    def renamed(env: StreamEnvironment) -> None:
        keyed_count(TestingSink(), events=EVENTS)(env)
        for t in env._transformations:
            if t.uid == "count":
                t.uid = "count-v2"

    with pytest.raises(errors.RestoreError, match=r"'count'.*allow-non-restored-state"):
        run_local(renamed, parallelism=2, checkpoint_dir=str(tmp_path), checkpoint_interval_ms=50)
    result = run_local(
        renamed,
        parallelism=2,
        checkpoint_dir=str(tmp_path),
        checkpoint_interval_ms=50,
        allow_non_restored_state=True,
    )
    assert result.state == "FINISHED"


class _OverwritingStorage(LocalStorage):
    """A server that silently ignores put-if-absent (reported by its probe)."""

    def probe(self) -> StorageCapabilities:
        return StorageCapabilities(
            location=self.url,
            put_if_absent_safe=False,
            put_if_absent_sequential=False,
            put_if_absent_concurrent=False,
            notes=("a second conditional write overwrote the first",),
        )


def test_storage_without_put_if_absent_is_refused_for_exactly_once(tmp_path: Path) -> None:
    storage = _OverwritingStorage(tmp_path)
    with pytest.raises(errors.CheckpointError, match="put-if-absent"):
        _run(TestingSink(), str(tmp_path), storage=storage)
    sink = TestingSink()
    result = _run(sink, str(tmp_path), storage=storage, allow_unsafe_storage=True)
    assert result.state == "FINISHED"
    assert_exactly_once(sink, EVENTS)


@pytest.mark.seaweedfs
def test_a_missing_bucket_names_endpoint_and_bucket(
    seaweedfs_checkpoint_url: Callable[[], str],
) -> None:
    import os

    with pytest.raises(errors.StreamJobError) as info:
        _run(TestingSink(), "s3://no-such-bucket-xyz/checkpoints")
    text = str(info.value)
    assert "no-such-bucket-xyz" in text
    assert os.environ["AWS_ENDPOINT_URL"] in text


def test_a_failed_checkpoint_within_the_tolerable_count_does_not_fail_the_job(
    tmp_path: Path,
) -> None:
    faults = FaultInjector()
    faults.arm("mid_upload", when=lambda ctx: ctx["checkpoint_id"] == 2)
    sink = TestingSink()
    result = _run(sink, str(tmp_path), faults=faults, tolerable_failures=1)
    assert faults.fired
    assert len(result.attempts) == 1
    ids = [c.checkpoint_id for c in result.checkpoints]
    assert 2 not in ids and len(ids) >= 2
    assert_exactly_once(sink, EVENTS)


def test_a_failed_checkpoint_beyond_the_tolerable_count_restarts(tmp_path: Path) -> None:
    faults = FaultInjector()
    faults.arm("mid_upload", when=lambda ctx: ctx["checkpoint_id"] == 2)
    with pytest.raises(errors.JobFailedError, match="checkpoint 2 failed"):
        _run(TestingSink(), str(tmp_path), faults=faults)


def test_checkpoint_ids_keep_increasing_across_runs(tmp_path: Path) -> None:
    first = _run(TestingSink(), str(tmp_path))
    second = _run(TestingSink(), str(tmp_path))
    top = max(c.checkpoint_id for c in first.checkpoints)
    assert min(c.checkpoint_id for c in second.checkpoints) > top


def test_a_job_never_deletes_the_savepoint_it_restored_from(tmp_path: Path) -> None:
    from tests.checkpoint.test_rescale import _env, _run_until_stopped

    sink = TestingSink()
    sp, _ = asyncio.run(_run_until_stopped(_env(sink, 2, tmp_path / "a"), tmp_path / "sp", 2000))
    before = sorted(p.name for p in Path(sp).iterdir())
    env = _env(sink, 2, tmp_path / "b", from_savepoint=sp, retained=1)
    assert asyncio.run(env.create_runner().run()).state == "FINISHED"
    assert sorted(p.name for p in Path(sp).iterdir()) == before


def test_a_restore_reads_only_what_it_needs(tmp_path: Path) -> None:
    """Same parallelism: the bytes read equal the state files' sizes plus the metadata."""
    sink = TestingSink()
    counters: list[CountingStorage] = []

    def wrap(storage: Any) -> Any:
        counters.append(CountingStorage(storage))
        return counters[-1]

    _run(sink, str(tmp_path))
    (cid,) = _checkpoints(tmp_path)
    files = sum(p.stat().st_size for p in (_job_root(tmp_path) / f"chk-{cid}").glob("*.kg"))
    metadata = (_job_root(tmp_path) / f"chk-{cid}" / "_metadata").stat().st_size
    env = StreamEnvironment(parallelism=2)
    keyed_count(TestingSink(), events=EVENTS)(env)
    env.configure_checkpoints(directory=str(tmp_path), interval_ms=50)
    result = asyncio.run(env.create_runner(wrap_storage=wrap).run())
    assert result.attempts[0].restore_stats.bytes_read == files
    assert counters[0].bytes_read >= files + metadata
