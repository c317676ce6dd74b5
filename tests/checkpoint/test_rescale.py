"""Savepoints and rescaling by key group.

Aspects covered:
- stop-with-savepoint at parallelism 2, resume at 3, stop again, resume at 1: the committed
  output equals the failure-free run, and every record was processed by the subtask owning its
  key group under the parallelism of its leg;
- a restoring subtask reads only its own key groups (the storage's byte counter: the bytes read
  equal exactly the owned key groups' bytes, plus the metadata);
- a savepoint is relocatable (moved to another directory, it still restores);
- an intermediate savepoint commits nothing and is never used for automatic recovery;
- a property test over random sequences of crashes and rescales.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamjob import StreamEnvironment
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.checkpoint.restart import FixedDelayRestart
from streamjob.execution.results import JobRunResult
from streamjob.storage.counting import CountingStorage
from streamjob.testing import TestingSink
from tests.checkpoint.jobs import Progress, assert_exactly_once, key_of, keyed_count

EVENTS = 9000


def _env(sink: TestingSink, p: int, chk: Path, **settings_: Any) -> StreamEnvironment:
    env = StreamEnvironment(parallelism=p)
    keyed_count(
        sink,
        events=EVENTS,
        rate=30_000,
        crash_at=settings_.pop("crash_at", None),
        progress=settings_.pop("progress", None),
    )(env)
    env.configure_checkpoints(directory=str(chk), interval_ms=50, **settings_)
    env.set_restart_strategy(FixedDelayRestart(attempts=3, delay_s=0.0))
    return env


async def _run_until_stopped(
    env: StreamEnvironment, savepoints: Path, stop_after: int, wrap: Any = None
) -> tuple[str, JobRunResult]:
    runner = env.create_runner(wrap_storage=wrap)
    run = asyncio.ensure_future(runner.run())
    while runner.result is None or runner.result.source_records < stop_after:
        await asyncio.sleep(0.005)
        if run.done():
            run.result()
            raise AssertionError(f"the job ended before the savepoint was taken: {run.result()}")
    path = await runner.trigger_savepoint(str(savepoints), stop=True)
    result = await run
    assert result.state == "STOPPED"
    return path, result


def _legs_in_order(sink: TestingSink, start: int) -> list[tuple[str, int, int]]:
    return sink.committed[start:]


def test_stop_with_savepoint_then_rescale_2_3_1(tmp_path: Path) -> None:
    sink = TestingSink()
    counters: list[CountingStorage] = []

    def wrap(storage: Any) -> Any:
        counting = CountingStorage(storage)
        counters.append(counting)
        return counting

    sp1, _ = asyncio.run(
        _run_until_stopped(_env(sink, 2, tmp_path / "a"), tmp_path / "sp", EVENTS // 3)
    )
    leg1 = len(sink.committed)
    sp2, r2 = asyncio.run(
        _run_until_stopped(
            _env(sink, 3, tmp_path / "b", from_savepoint=sp1), tmp_path / "sp", EVENTS // 3, wrap
        )
    )
    leg2 = len(sink.committed)
    counters_before_leg3 = len(counters)
    env3 = _env(sink, 1, tmp_path / "c", from_savepoint=sp2)
    r3 = asyncio.run(env3.create_runner(wrap_storage=wrap).run())
    assert r3.state == "FINISHED"
    assert_exactly_once(sink, EVENTS)
    # each leg restored from the savepoint, not from scratch
    assert r2.attempts[0].restored_from == sp1
    assert r3.attempts[0].restored_from == sp2
    assert 0 < r2.attempts[0].source_records < EVENTS
    # records of each leg ran on the subtask that owns their key group at that parallelism
    from tests.checkpoint.jobs import assert_keyed_placement

    for start, end, p in ((0, leg1, 2), (leg1, leg2, 3), (leg2, len(sink.committed), 1)):
        part = TestingSink()
        part.committed = sink.committed[start:end]
        assert_keyed_placement(part, p)
    # byte counter: leg 2 (p=3) read exactly the owned key groups' bytes, plus the metadata
    restore = r2.attempts[0]
    total_state = restore.restore_stats.bytes_read
    # the savepoint's storage as opened by leg 2's runner (the first one under sp/)
    savepoint_storage = next(c for c in counters if "savepoint-" in c.url)
    assert savepoint_storage.bytes_read >= total_state
    metadata_bytes = savepoint_storage.bytes_read - total_state
    assert metadata_bytes < 64 * 1024
    per_task = list(restore.restore_per_task.values())
    assert len(per_task) >= 3
    keyed_reads = [s.bytes_read for s in per_task if s.key_groups]
    assert len(keyed_reads) == 3
    assert sum(keyed_reads) == total_state
    assert max(keyed_reads) < total_state  # no subtask read everything
    assert counters_before_leg3 >= 1


def test_savepoint_is_relocatable(tmp_path: Path) -> None:
    sink = TestingSink()
    sp, _ = asyncio.run(
        _run_until_stopped(_env(sink, 2, tmp_path / "a"), tmp_path / "sp", EVENTS // 2)
    )
    moved = tmp_path / "elsewhere" / "my-savepoint"
    shutil.copytree(sp, moved)
    shutil.rmtree(sp)
    r = asyncio.run(_env(sink, 2, tmp_path / "b", from_savepoint=str(moved)).create_runner().run())
    assert r.attempts[0].restored_from == str(moved)
    assert_exactly_once(sink, EVENTS)


async def _intermediate_savepoint(
    env: StreamEnvironment, savepoints: Path, sink: TestingSink
) -> tuple[str, int, JobRunResult]:
    runner = env.create_runner()
    run = asyncio.ensure_future(runner.run())
    while runner.result is None or runner.result.source_records < EVENTS // 3:
        await asyncio.sleep(0.005)
    path = await runner.trigger_savepoint(str(savepoints), stop=False)
    # the savepoint's own pre-committed transactions are not committed by it
    meta = CheckpointMetadata.from_bytes(Path(path, "_metadata").read_bytes(), location=path)
    sink_state = meta.operator("sink")
    assert sink_state is not None
    own = [
        t["id"]
        for t in sink_state.operator_state["sink-transactions"].all_elements()
        if t["checkpoint"] == meta.checkpoint_id
    ]
    assert own, "the savepoint pre-committed no transaction: the check below would be empty"
    committed_own = [t for t in own if t in sink.committed_transactions]
    result = await run
    return path, len(committed_own), result


def test_intermediate_savepoint_commits_nothing_and_is_not_used_for_recovery(
    tmp_path: Path,
) -> None:
    sink = TestingSink()
    progress = Progress()
    env = _env(sink, 2, tmp_path / "a", crash_at=2 * EVENTS // 3, progress=progress)
    from streamjob.checkpoint.faults import FaultInjector

    faults = progress.attach(FaultInjector())
    original = env.create_runner
    env.create_runner = lambda **kw: original(faults=faults, **kw)  # type: ignore[method-assign]
    _, committed_by_savepoint, result = asyncio.run(
        _intermediate_savepoint(env, tmp_path / "sp", sink)
    )
    assert committed_by_savepoint == 0
    assert result.state == "FINISHED" and len(result.attempts) == 2
    restored = result.attempts[1].restored_from or ""
    assert "/sp/" not in restored and "/chk-" in restored
    assert_exactly_once(sink, EVENTS)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.sampled_from(["crash", "rescale-1", "rescale-2", "rescale-3"]), min_size=1, max_size=3
    )
)
def test_random_crashes_and_rescales_are_exactly_once(tmp_path: Path, steps: list[str]) -> None:
    base = tmp_path / f"run-{abs(hash(tuple(steps))) % 10**8}-{len(list(tmp_path.iterdir()))}"
    sink = TestingSink()
    savepoint: str | None = None
    p = 2
    for n, step in enumerate(steps):
        progress = Progress()
        crash = step == "crash"
        env = _env(
            sink,
            p,
            base / f"leg{n}",
            from_savepoint=savepoint,
            crash_at=(n + 1) * EVENTS // (len(steps) + 2) if crash else None,
            progress=progress if crash else None,
        )
        if crash:
            from streamjob.checkpoint.faults import FaultInjector

            faults = progress.attach(FaultInjector())
            original = env.create_runner
            env.create_runner = lambda o=original, f=faults, **kw: o(faults=f, **kw)  # type: ignore[method-assign]
            result = asyncio.run(env.create_runner().run())
            assert result.state == "FINISHED"
            break  # the job ran to the end through its failover
        p_next = int(step.split("-")[1])
        savepoint, _ = asyncio.run(_run_until_stopped(env, base / "sp", EVENTS // (len(steps) + 2)))
        p = p_next
    else:
        env = _env(sink, p, base / "final", from_savepoint=savepoint)
        assert asyncio.run(env.create_runner().run()).state == "FINISHED"
    assert_exactly_once(sink, EVENTS)
    assert key_of(0)  # the job keys are the ones the reference uses
