"""Window contents, trigger state and timers move with their key groups.

Each case runs one operator uninterrupted (the reference) and, in parallel, two subtasks at
parallelism 2 that are snapshotted per key group (``snapshot_keyed_sections``) mid-stream and
restored into three fresh subtasks at parallelism 3 (``restore_keyed_sections``, before
``open`` as a restore does). After the restore both get the same rest of the stream: the three
new subtasks together fire exactly what the reference fires, each for the keys it owns.

Cases: the fast path (tumbling reduce with allowed lateness and already fired windows, sliding
aggregate, processing time), the generic path (sessions with a process function, global windows
whose count-trigger state is mid-count), and the raw blob format checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamjob import keygroups
from streamjob.clock import ManualClock
from streamjob.errors import StateError
from streamjob.runtime.operators.base import StreamOperator
from streamjob.windows import (
    AggregateFunction,
    CountTrigger,
    EventTimeSessionWindows,
    GlobalWindows,
    SlidingEventTimeWindows,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
)
from streamjob.windows.fast_operator import FastWindowOperator
from streamjob.windows.functions import WindowContents
from streamjob.windows.operator_base import WindowSpec
from streamjob.windows.stream import make_window_operator

from .harness import Harness
from .test_windows import Describe

KEYS = [f"user-{i}" for i in range(30)]


def add(a: tuple[str, int], b: tuple[str, int]) -> tuple[str, int]:
    return (a[0], a[1] + b[1])


Step = tuple[str, Any]  # ("rec", (record, ts)) | ("wm", ts)


def drive(harnesses: list[Harness], steps: list[Step]) -> None:
    for kind, payload in steps:
        if kind == "rec":
            record, ts = payload
            owner = [h for h in harnesses if h.owns(record)]
            assert len(owner) == 1
            owner[0].element(record, ts)
        else:
            for h in harnesses:
                h.watermark(payload)


def roundtrip(
    make: Callable[[], StreamOperator], before: list[Step], after: list[Step]
) -> tuple[list[Any], list[list[Any]]]:
    """Outputs after the restore: (the reference's, each new subtask's)."""

    def harness(i: int, p: int, open_now: bool = True) -> Harness:
        return Harness(make(), lambda r: r[0], subtask=i, parallelism=p, open_now=open_now)

    reference = harness(0, 1)
    old = [harness(i, 2) for i in range(2)]
    drive([reference], before)
    drive(old, before)
    sections = {
        kg: h.operator.snapshot_keyed_sections(kg)  # type: ignore[attr-defined]
        for h in old
        for kg in h.key_group_range
    }
    new = [harness(i, 3, open_now=False) for i in range(3)]
    for h in new:
        for kg in h.key_group_range:
            h.operator.restore_keyed_sections(kg, sections[kg])  # type: ignore[attr-defined]
        h.operator.open()
    reference.take()
    last_wm = [ts for kind, ts in before if kind == "wm"]
    if last_wm:  # a restored job's sources emit their watermark again
        drive(new, [("wm", last_wm[-1])])
    drive([reference], after)
    drive(new, after)
    outputs = [[r for r, _ in h.take()] for h in new]
    for subtask, records in enumerate(outputs):
        for record in records:
            kg = keygroups.assign_to_key_group(record[0], 128)
            assert keygroups.operator_index_for_key_group(128, 3, kg) == subtask
    return sorted(r for r, _ in reference.take()), outputs


def records(ts_of: Callable[[int], int], n: int = 90, value: int = 1) -> list[Step]:
    return [("rec", ((KEYS[i % len(KEYS)], value), ts_of(i))) for i in range(n)]


def check(make: Callable[[], StreamOperator], before: list[Step], after: list[Step]) -> None:
    want, got = roundtrip(make, before, after)
    assert want, "the case fires nothing after the restore: it tests nothing"
    assert sorted(r for rs in got for r in rs) == want
    assert sum(1 for rs in got if rs) >= 2, "the restored key groups should spread"


def test_fast_tumbling_reduce_with_fired_windows_kept_for_lateness() -> None:
    def make() -> StreamOperator:
        spec = WindowSpec(
            TumblingEventTimeWindows.of(10),
            WindowContents("reduce", reduce=add),
            allowed_lateness=20,
        )
        return make_window_operator(spec)

    before = [*records(lambda i: i % 60), ("wm", 35)]
    # late but allowed for [20, 30) and [30, 40): re-fire; then the rest
    after = [*records(lambda i: 25 + i % 20, n=40, value=10), ("wm", (1 << 63) - 1)]
    check(make, before, after)


class KeyedAverage(AggregateFunction):
    def create_accumulator(self) -> list[Any]:
        return [None, 0, 0]

    def add(self, value: tuple[str, int], accumulator: list[Any]) -> list[Any]:
        return [value[0], accumulator[1] + value[1], accumulator[2] + 1]

    def get_result(self, accumulator: list[Any]) -> tuple[str, float]:
        return (accumulator[0], accumulator[1] / accumulator[2])

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        return [a[0] or b[0], a[1] + b[1], a[2] + b[2]]


def test_fast_sliding_aggregate() -> None:
    def make() -> StreamOperator:
        spec = WindowSpec(
            SlidingEventTimeWindows.of(20, 5),
            WindowContents("aggregate", aggregate=KeyedAverage()),
        )
        return make_window_operator(spec)

    before = [*records(lambda i: (i * 7) % 50), ("wm", 12)]
    after = [*records(lambda i: 20 + i % 30, n=60, value=3), ("wm", 70), ("wm", 200)]
    check(make, before, after)


def test_fast_processing_time_windows() -> None:
    clock = ManualClock(0)

    def make() -> StreamOperator:
        spec = WindowSpec(
            TumblingProcessingTimeWindows.of(100), WindowContents("reduce", reduce=add)
        )
        return make_window_operator(spec)

    def harness(i: int, p: int) -> Harness:
        return Harness(
            make(), lambda r: r[0], subtask=i, parallelism=p, clock=clock, open_now=False
        )

    old = [harness(i, 2) for i in range(2)]
    reference = harness(0, 1)
    for h in (*old, reference):
        h.operator.open()
    for i in range(60):
        record = (KEYS[i % len(KEYS)], 1)
        for h in (*[h for h in old if h.owns(record)], reference):
            h.element(record)
    sections = {kg: h.operator.snapshot_keyed_sections(kg) for h in old for kg in h.key_group_range}  # type: ignore[attr-defined]
    for h in old:
        h.close()
    new = [harness(i, 3) for i in range(3)]
    for h in new:
        for kg in h.key_group_range:
            h.operator.restore_keyed_sections(kg, sections[kg])  # type: ignore[attr-defined]
        h.operator.open()
    clock.set(150)
    for h in (*new, reference):
        h.run_mail()
    want = sorted(r for r, _ in reference.take())
    assert len(want) == len(KEYS)
    assert sorted(r for h in new for r, _ in h.take()) == want


def test_generic_sessions_with_a_process_function() -> None:
    def make() -> StreamOperator:
        spec = WindowSpec(
            EventTimeSessionWindows.with_gap(6),
            WindowContents("list"),
            window_function=Describe(),
            allowed_lateness=10,
        )
        return make_window_operator(spec)

    before = [*records(lambda i: (i * 13) % 40), ("wm", 20)]
    after = [*records(lambda i: 15 + (i * 5) % 40, n=60, value=2), ("wm", (1 << 63) - 1)]
    check(make, before, after)


def test_generic_global_windows_keep_their_trigger_counts() -> None:
    def make() -> StreamOperator:
        spec = WindowSpec(
            GlobalWindows.create(),
            WindowContents("reduce", reduce=add),
            trigger=CountTrigger.of(4),
        )
        return make_window_operator(spec)

    # 90 records over 30 keys: every key is at count 3 when snapshotted
    check(make, records(lambda i: i), records(lambda i: i, n=30, value=5))


def test_window_blobs_refuse_foreign_key_groups_and_bytes() -> None:
    spec = WindowSpec(TumblingEventTimeWindows.of(10), WindowContents("reduce", reduce=add))
    h = Harness(FastWindowOperator(spec), lambda r: r[0], subtask=0, parallelism=2)
    h.element(("user-1", 1), 3)
    kg = next(iter(h.key_group_range))
    blob = h.operator.snapshot_key_group(kg)  # type: ignore[attr-defined]
    with pytest.raises(StateError, match="outside"):
        h.operator.snapshot_key_group(127)  # type: ignore[attr-defined]
    with pytest.raises(StateError, match="not a window blob"):
        h.operator.restore_key_group(kg + 1, blob)  # type: ignore[attr-defined]
