"""Copy-on-write snapshots in running jobs: the barrier goes on first, exactly-once still holds.

Aspects covered:

* a keyed task with 100,000 keys of hashmap state: every checkpoint's barrier leaves the task
  before any of its key groups is serialized, all of them are serialized after it (before the
  next barrier), records keep flowing meanwhile, and the synchronous part (barrier in to
  barrier out) is a small fraction of the snapshot (barrier in to the last key group
  serialized). Negative control: with copy-on-write off (the backend refuses the guards), every
  key group is serialized before the barrier leaves, and the synchronous part is the snapshot;
* exactly-once through a crash while snapshots interleave with records (steps slowed down so
  that records change entries of pending key groups, kept entry by entry), at parallelism 1
  and 2, with a restore from a checkpoint taken that way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from streamjob import GeneratorSource, StreamEnvironment
from streamjob.checkpoint import copy_on_write, snapshotting
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import FixedDelayRestart
from streamjob.connectors.basic_sinks import DiscardingSink
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.runtime.events import CheckpointBarrier
from streamjob.runtime.task import Task
from streamjob.state import ValueStateDescriptor
from streamjob.testing import TestingSink, run_local
from tests.checkpoint.jobs import Progress, assert_exactly_once, keyed_count

KEYS = 100_000


class Profile(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.profile = runtime_context.get_state(ValueStateDescriptor("profile"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        old = self.profile.value()
        n = 1 if old is None else old[0] + 1
        self.profile.update((n, value[1], f"https://example.com/{value[1]}"))
        return None


def profiles(env: StreamEnvironment) -> None:
    source = GeneratorSource(lambda i: (f"user-{i % KEYS}", i), count=2 * KEYS, rate_per_second=2e5)
    (
        env.from_source(source, source_name="users")
        .key_by(lambda r: r[0])
        .process(Profile())
        .uid("profile")
        .sink_to(DiscardingSink())
    )


class Log:
    """Events of the keyed task, in order: barriers out, key groups serialized (each with its
    checkpoint id and the task's records so far)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []  # (kind, checkpoint id, records in)
        self.snapshots: list[snapshotting.SubtaskSnapshot] = []
        self.performing = 0  # the checkpoint whose synchronous part runs
        self.task: Task | None = None

    def add(self, kind: str, checkpoint_id: int) -> None:
        assert self.task is not None
        self.events.append((kind, checkpoint_id, self.task.records_in))

    def rounds(self) -> dict[int, tuple[int, int, int]]:
        """Per checkpoint: (key groups serialized before its barrier left, after it, records
        processed from its barrier to its last key group)."""
        out: dict[int, tuple[int, int, int]] = {}
        for cid in sorted({c for kind, c, _ in self.events if kind == "barrier"}):
            mine = [e for e in self.events if e[1] == cid]
            at = next(i for i, e in enumerate(mine) if e[0] == "barrier")
            records = mine[-1][2] - mine[at][2]
            out[cid] = (at, len(mine) - at - 1, records)
        return out


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Log:
    found = Log()
    broadcast = Task.broadcast_event

    def broadcast_event(task: Task, event: Any) -> None:
        broadcast(task, event)
        if isinstance(event, CheckpointBarrier) and any(op.is_keyed for op in task.operators):
            found.task = task
            found.add("barrier", event.checkpoint_id)

    monkeypatch.setattr(Task, "broadcast_event", broadcast_event)
    perform = snapshotting.TaskCheckpointer.perform

    def performing(self: Any, task: Task, barrier: CheckpointBarrier) -> None:
        if any(op.is_keyed for op in task.operators):
            found.task = task
            found.performing = barrier.checkpoint_id
        perform(self, task, barrier)

    monkeypatch.setattr(snapshotting.TaskCheckpointer, "perform", performing)
    parts = snapshotting.keyed_blob_parts

    def synchronous(op: Any, kg: int) -> Any:  # the synchronous path
        found.add("kg", found.performing)
        return parts(op, kg)

    monkeypatch.setattr(snapshotting, "keyed_blob_parts", synchronous)
    init, take = copy_on_write.KeyGroupSnapshot.__init__, copy_on_write.KeyGroupSnapshot._take

    def created(self: Any, op: Any, key_groups: Any) -> None:
        init(self, op, key_groups)
        self.checkpoint_id = found.performing

    def taken(self: Any, kg: int, *, capture: bool) -> None:  # the copy-on-write path
        found.add("kg", self.checkpoint_id)
        take(self, kg, capture=capture)

    monkeypatch.setattr(copy_on_write.KeyGroupSnapshot, "__init__", created)
    monkeypatch.setattr(copy_on_write.KeyGroupSnapshot, "_take", taken)
    init_checkpointer = snapshotting.TaskCheckpointer.__init__

    def checkpointer(self: Any, task: Task, **kwargs: Any) -> None:
        acknowledge = kwargs["acknowledge"]

        def acked(cid: int, key: Any, snapshot: snapshotting.SubtaskSnapshot) -> None:
            if snapshot.bytes_written:
                found.snapshots.append(snapshot)
            acknowledge(cid, key, snapshot)

        kwargs["acknowledge"] = acked
        init_checkpointer(self, task, **kwargs)

    monkeypatch.setattr(snapshotting.TaskCheckpointer, "__init__", checkpointer)
    return found


def test_the_barrier_leaves_before_the_key_groups_are_serialized(tmp_path: Path, log: Log) -> None:
    run_local(profiles, checkpoint_dir=str(tmp_path / "chk"), checkpoint_interval_ms=100)
    per_checkpoint = log.rounds()
    assert len(per_checkpoint) >= 3, f"too few checkpoints to judge: {per_checkpoint}"
    assert all(r[:2] == (0, 128) for r in per_checkpoint.values()), per_checkpoint
    assert any(r[2] > 0 for r in per_checkpoint.values()), "no record while serializing"
    largest = max(log.snapshots, key=lambda s: s.bytes_written)
    assert largest.bytes_written > 3_000_000
    assert largest.sync_ms * 5 < largest.snapshot_ms, (largest.sync_ms, largest.snapshot_ms)


def test_negative_control_without_copy_on_write_the_barrier_waits(
    tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copy_on_write.KeyGroupSnapshot, "start", lambda self: False)
    run_local(profiles, checkpoint_dir=str(tmp_path / "chk"), checkpoint_interval_ms=100)
    per_checkpoint = log.rounds()
    assert len(per_checkpoint) >= 3
    assert all(r == (128, 0, 0) for r in per_checkpoint.values()), per_checkpoint
    largest = max(log.snapshots, key=lambda s: s.bytes_written)
    assert largest.sync_ms == largest.snapshot_ms


class Touches:
    """Copy-on-write snapshots finished, and the entries records changed in pending key
    groups (their barrier values kept), in total."""

    def __init__(self) -> None:
        self.snapshots = 0
        self.copied = 0


@pytest.fixture
def slow_steps(monkeypatch: pytest.MonkeyPatch) -> Touches:
    """Steps serialize at most every 1 ms, so records reach pending key groups first."""
    touches = Touches()
    step = copy_on_write.CopyOnWriteSnapshot.step
    last: dict[int, float] = {}

    def slow(self: copy_on_write.CopyOnWriteSnapshot) -> bool:
        now = time.perf_counter()
        busy = self.failure is None and not all(op.done for op in self.operators)
        if busy and now - last.get(id(self), 0.0) < 0.001:
            return True
        last[id(self)] = now
        more = step(self)
        if not more:
            touches.snapshots += 1
            touches.copied += sum(op.copied_on_write for op in self.operators)
        return more

    monkeypatch.setattr(copy_on_write.CopyOnWriteSnapshot, "step", slow)
    monkeypatch.setattr(copy_on_write, "STEP_BUDGET_S", 0.0)
    return touches


EVENTS = 12_000


@pytest.mark.parametrize("p", [1, 2])
def test_exactly_once_while_records_touch_pending_key_groups(
    tmp_path: Path, p: int, slow_steps: Touches
) -> None:
    sink = TestingSink()
    progress = Progress()
    faults = progress.attach(FaultInjector())
    result = run_local(
        keyed_count(sink, events=EVENTS, rate=10_000, crash_at=EVENTS * 2 // 3, progress=progress),
        parallelism=p,
        faults=faults,
        checkpoint_dir=str(tmp_path / "chk"),
        checkpoint_interval_ms=50,
        restart=FixedDelayRestart(attempts=3, delay_s=0.0),
    )
    assert len(result.attempts) >= 2, "the job never failed over"
    restored = result.attempts[-1].restored_checkpoint_id
    assert restored is not None and restored > 0
    assert slow_steps.snapshots > 0 and slow_steps.copied > 0, "no record met a pending entry"
    assert_exactly_once(sink, EVENTS)
