"""Copy-on-write snapshots of keyed operators: state, timers and windows as of the barrier.

Each case drives one keyed operator (the event-time harness: manual clock, hashmap backend),
takes the blobs a synchronous snapshot would write at the barrier, then starts a copy-on-write
snapshot and drives on: records that change state and register or delete timers, watermarks
and processing time that fire timers and windows (firing changes and drops state), TTL state
dropped on read. The copy-on-write blobs must hold what the barrier's hold (the same entries;
timer and window sections byte for byte), and some key groups must have been captured because
something was about to change them (not only by steps).

Cases: a KeyedProcessFunction with ValueState, ListState, MapState with TTL, event-time and
processing-time timers (registered, deleted, fired); the generic window operator (sessions:
contents in keyed state, timers); the fast window operator (tumbling reduce with allowed
lateness, sliding aggregate). Negative control: the same runs with the snapshot not guarding
give other blobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from streamjob.checkpoint import copy_on_write
from streamjob.checkpoint.operator_state import keyed_blob
from streamjob.duration import Duration
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.runtime.operators.base import StreamOperator
from streamjob.runtime.operators.keyed import KeyedProcessOperator
from streamjob.state import (
    ListStateDescriptor,
    MapStateDescriptor,
    StateTtlConfig,
    ValueStateDescriptor,
)
from streamjob.windows import (
    EventTimeSessionWindows,
    SlidingEventTimeWindows,
    TumblingEventTimeWindows,
)
from streamjob.windows.functions import WindowContents
from streamjob.windows.operator_base import WindowSpec
from streamjob.windows.stream import make_window_operator
from tests.eventtime.harness import Harness
from tests.eventtime.test_snapshots import KeyedAverage
from tests.eventtime.test_windows import Describe
from tests.state.test_copy_on_write import content

KEYS = [f"user-{i}" for i in range(60)]


class Everything(KeyedProcessFunction):
    """Per key: a count, the last values, a TTL map of seen values; a timer per record."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))
        self.recent = runtime_context.get_state(ListStateDescriptor("recent"))
        seen = MapStateDescriptor("seen")
        seen.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_millis(500)).build())
        self.seen = runtime_context.get_state(seen)

    def process_element(self, value: Any, ctx: Any) -> Any:
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        self.recent.add(value[1])
        self.seen.put(value[1], n)
        timers = ctx.timer_service()
        ts = ctx.timestamp()
        timers.register_event_time_timer(ts + 50)
        timers.register_processing_time_timer(timers.current_processing_time() + 100)
        if n % 3 == 0:
            timers.delete_event_time_timer(ts + 50)
        return None

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        self.recent.clear()
        self.seen.items()  # drops the expired entries
        if ctx.time_domain().name == "EVENT_TIME" and timestamp % 2:
            ctx.timer_service().register_event_time_timer(timestamp + 1_000)
        return [(ctx.get_current_key(), timestamp)]


Step = tuple[str, Any]


def records(n: int, ts: Callable[[int], int], value: int = 1) -> list[Step]:
    return [("rec", ((KEYS[i % len(KEYS)], value * (i + 1)), ts(i))) for i in range(n)]


def drive(h: Harness, steps: list[Step]) -> None:
    for kind, payload in steps:
        if kind == "rec":
            record, ts = payload
            h.element(record, ts)
        elif kind == "wm":
            h.watermark(payload)
        else:
            h.advance(payload)


def snapshot_after(
    make: Callable[[], StreamOperator], before: list[Step], after: list[Step], *, guard: bool
) -> tuple[dict[int, bytes], dict[int, bytes], int]:
    """(the barrier's blobs, the copy-on-write blobs, key groups taken by a touch)."""
    h = Harness(make(), lambda r: r[0])
    drive(h, before)
    op = h.operator
    expected = {kg: keyed_blob(op, kg) for kg in h.key_group_range}
    snapshot = copy_on_write.KeyGroupSnapshot(op, list(h.key_group_range))
    if guard:
        assert snapshot.start()
    drive(h, after)
    assert h.take(), "nothing fired after the barrier: the case tests too little"
    while not snapshot.done:
        snapshot.step(time.perf_counter() + 1.0)
    got = {kg: b"".join(parts) for kg, parts in snapshot.blobs.items()}
    return expected, got, snapshot.taken_by_touch


def process_function() -> StreamOperator:
    return KeyedProcessOperator(Everything())


def sessions() -> StreamOperator:
    spec = WindowSpec(
        EventTimeSessionWindows.with_gap(6),
        WindowContents("list"),
        window_function=Describe(),
        allowed_lateness=10,
    )
    return make_window_operator(spec)


def tumbling_with_lateness() -> StreamOperator:
    spec = WindowSpec(
        TumblingEventTimeWindows.of(10),
        WindowContents("reduce", reduce=lambda a, b: (a[0], a[1] + b[1])),
        allowed_lateness=20,
    )
    return make_window_operator(spec)


def sliding_aggregate() -> StreamOperator:
    spec = WindowSpec(
        SlidingEventTimeWindows.of(20, 5), WindowContents("aggregate", aggregate=KeyedAverage())
    )
    return make_window_operator(spec)


CASES: dict[str, tuple[Callable[[], StreamOperator], list[Step], list[Step]]] = {
    "process-function": (
        process_function,
        [*records(150, lambda i: i), ("wm", 60), ("time", 50)],
        [*records(90, lambda i: 100 + i, value=7), ("wm", 140), ("time", 600), ("wm", 5_000)],
    ),
    "sessions": (
        sessions,
        [*records(120, lambda i: (i * 13) % 40), ("wm", 20)],
        [*records(80, lambda i: 15 + (i * 5) % 40, value=2), ("wm", 30), ("wm", 1 << 40)],
    ),
    "tumbling-lateness": (
        tumbling_with_lateness,
        [*records(120, lambda i: i % 60), ("wm", 35)],
        [*records(60, lambda i: 25 + i % 20, value=10), ("wm", 50), ("wm", 1 << 40)],
    ),
    "sliding-aggregate": (
        sliding_aggregate,
        [*records(120, lambda i: (i * 7) % 50), ("wm", 12)],
        [*records(90, lambda i: 20 + i % 30, value=3), ("wm", 70), ("wm", 200)],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_blobs_hold_state_timers_and_windows_at_the_barrier(case: str) -> None:
    make, before, after = CASES[case]
    expected, got, touched = snapshot_after(make, before, after, guard=True)
    assert touched > 0, "nothing touched a pending key group: the case tests only steps"
    assert [kg for kg in expected if content(got[kg]) != content(expected[kg])] == []


@pytest.mark.parametrize("case", list(CASES))
def test_negative_control_without_guards_the_blobs_change(case: str) -> None:
    make, before, after = CASES[case]
    expected, got, _ = snapshot_after(make, before, after, guard=False)
    assert any(content(got[kg]) != content(expected[kg]) for kg in expected)


def started(h: Harness) -> copy_on_write.KeyGroupSnapshot:
    snapshot = copy_on_write.KeyGroupSnapshot(h.operator, list(h.key_group_range))
    assert snapshot.start()
    return snapshot


def test_a_newer_barrier_finishes_the_previous_snapshot_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the checkpointer does when barrier n+1 finds n's key groups pending."""
    monkeypatch.setattr(copy_on_write, "STEP_BUDGET_S", 0.0)  # one key group per step
    h = Harness(process_function(), lambda r: r[0])
    drive(h, records(150, lambda i: i))
    expected = {kg: keyed_blob(h.operator, kg) for kg in h.key_group_range}
    done: list[copy_on_write.CopyOnWriteSnapshot] = []
    first = copy_on_write.CopyOnWriteSnapshot(1, [started(h)], done.append)
    drive(h, records(20, lambda i: 200 + i, value=5))  # touches a few key groups
    assert first.step() and not done
    first.complete_now()
    assert done == [first] and first.failure is None
    got = {kg: b"".join(parts) for kg, parts in first.operators[0].blobs.items()}
    assert got.keys() == expected.keys()
    assert all(content(got[kg]) == content(expected[kg]) for kg in expected)
    second = copy_on_write.CopyOnWriteSnapshot(2, [started(h)], done.append)  # guards again
    while second.step():
        pass
    assert done == [first, second]
    assert not first.step()  # over: nothing runs twice


def test_an_abandoned_snapshot_drops_its_guards_and_never_finishes() -> None:
    h = Harness(process_function(), lambda r: r[0])
    drive(h, records(150, lambda i: i))
    done: list[copy_on_write.CopyOnWriteSnapshot] = []
    snapshot = copy_on_write.CopyOnWriteSnapshot(1, [started(h)], done.append)
    snapshot.abandon()
    assert not snapshot.step() and done == []
    backend = h.operator.backend  # type: ignore[attr-defined]
    assert backend._guarded == set() and h.operator.timers.guard is None  # type: ignore[attr-defined]
    drive(h, records(20, lambda i: 200 + i))  # state goes on unguarded
    started(h)  # and the next snapshot may begin
