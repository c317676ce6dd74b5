"""Window semantics, case by case (Flink's ``WindowOperator``), on both operators.

Aspects covered:
- exact lateness boundaries: a window fires when the watermark reaches ``end - 1``; a record
  for it after that is late (side output) without allowed lateness; with lateness it re-fires
  at once until ``end - 1 + lateness``, then it is late; a window first seen late-but-allowed
  fires at once; the fast path and the generic path agree on every case;
- results carry the window's maximum timestamp; global windows carry the maximum watermark;
- reduce, aggregate, process (sees the window's start and end), reduce/aggregate combined
  with a process function, apply (WindowFunction), window sum;
- per-window and global state in a ProcessWindowFunction, and ``clear`` at cleanup;
- custom triggers, count triggers on time windows, purging triggers;
- processing-time sessions on the manual clock;
- bad windows are refused when the job is built; records without timestamps fail with a
  message that says what to do; processing-time windows need no timestamps.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob import (
    Duration,
    JobDefinitionError,
    JobFailedError,
    OutputTag,
    StreamEnvironment,
    WatermarkStrategy,
)
from streamjob.eventtime.generators import PunctuatedBoundedOutOfOrderness
from streamjob.functions import RuntimeContext
from streamjob.state import ValueStateDescriptor
from streamjob.testing import TestingSink, TestingSource, run_local
from streamjob.windows import (
    AggregateFunction,
    CountTrigger,
    EventTimeSessionWindows,
    EventTimeTrigger,
    GlobalWindows,
    ProcessingTimeSessionWindows,
    ProcessWindowFunction,
    PurgingTrigger,
    SlidingEventTimeWindows,
    TimeWindow,
    Trigger,
    TriggerResult,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
    WindowFunction,
)
from streamjob.windows.fast_operator import FastWindowOperator
from streamjob.windows.functions import WindowContents
from streamjob.windows.generic_operator import WindowOperator
from streamjob.windows.operator_base import WindowSpec
from streamjob.windows.stream import make_window_operator

from .harness import Harness

MAX = (1 << 63) - 1


class GenericEventTimeTrigger(EventTimeTrigger):
    """Same behaviour as the default trigger, but a custom type: forces the generic path."""


def add(a: tuple[str, int], b: tuple[str, int]) -> tuple[str, int]:
    return (a[0], a[1] + b[1])


def window_harness(path: str, lateness: int, late: str | None = "late") -> Harness:
    spec = WindowSpec(
        TumblingEventTimeWindows.of(10),
        WindowContents("reduce", reduce=add),
        trigger=GenericEventTimeTrigger() if path == "generic" else None,
        allowed_lateness=lateness,
        late_tag=late,
    )
    operator = make_window_operator(spec)
    assert isinstance(operator, FastWindowOperator if path == "fast" else WindowOperator)
    return Harness(operator, lambda r: r[0])


PATHS = ["fast", "generic"]


@pytest.mark.parametrize("path", PATHS)
def test_without_lateness_a_record_after_the_window_fired_is_late(path: str) -> None:
    h = window_harness(path, 0)
    h.element(("a", 1), 3)
    h.watermark(8)
    assert h.take() == []
    h.watermark(9)
    assert h.take() == [(("a", 1), 9)]
    h.element(("a", 5), 9)  # window [0, 10) has fired and is gone
    h.element(("a", 7), 10)  # the next window is fine
    assert h.output.side["late"] == [(("a", 5), 9)]
    h.watermark(19)
    assert h.take() == [(("a", 7), 19)]
    assert h.output.watermarks == [8, 9, 19]


@pytest.mark.parametrize("path", PATHS)
def test_allowed_lateness_refires_at_once_until_end_plus_lateness(path: str) -> None:
    h = window_harness(path, 5)
    h.element(("a", 1), 3)
    h.watermark(9)
    assert h.take() == [(("a", 1), 9)]
    h.element(("a", 2), 5)  # late but allowed: fires again with the updated result
    assert h.take() == [(("a", 3), 9)]
    h.watermark(13)
    h.element(("b", 4), 0)  # first record of b's window, already past its end: fires at once
    assert h.take() == [(("b", 4), 9)]
    h.watermark(14)  # end - 1 + lateness: cleaned, nothing fires again
    assert h.take() == []
    h.element(("a", 8), 7)
    assert h.take() == []
    assert h.output.side["late"] == [(("a", 8), 7)]


@pytest.mark.parametrize("path", PATHS)
def test_late_records_are_counted_and_dropped_without_a_side_output(path: str) -> None:
    h = window_harness(path, 0, late=None)
    h.watermark(100)
    h.process([("a", 1), ("b", 2)], [5, 50])
    assert h.take() == [] and h.output.side == {}
    assert h.operator.num_late_records_dropped == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", PATHS)
def test_a_watermark_jump_fires_windows_in_order_and_forwards_after_them(path: str) -> None:
    h = window_harness(path, 0)
    h.process([("a", 1), ("a", 2), ("b", 3), ("a", 4)], [25, 5, 15, 7])
    h.watermark(40)
    assert sorted(h.take(), key=lambda r: r[1]) == [(("a", 6), 9), (("b", 3), 19), (("a", 1), 29)]
    assert h.output.watermarks == [40]


def test_sliding_windows_skip_only_their_late_windows() -> None:
    spec = WindowSpec(
        SlidingEventTimeWindows.of(20, 10), WindowContents("reduce", reduce=add), late_tag="late"
    )
    h = Harness(make_window_operator(spec), lambda r: r[0])
    h.watermark(19)  # [0, 20) is done, [10, 30) is not
    h.element(("a", 1), 15)
    assert h.output.side == {}
    h.watermark(29)
    assert h.take() == [(("a", 1), 29)]
    h.element(("a", 1), 15)  # both its windows are late now
    assert h.output.side["late"] == [(("a", 1), 15)]


class Average(AggregateFunction):
    def create_accumulator(self) -> list[int]:
        return [0, 0]

    def add(self, value: tuple[str, int], accumulator: list[int]) -> list[int]:
        accumulator[0] += value[1]
        accumulator[1] += 1
        return accumulator

    def get_result(self, accumulator: list[int]) -> float:
        return accumulator[0] / accumulator[1]

    def merge(self, a: list[int], b: list[int]) -> list[int]:
        return [a[0] + b[0], a[1] + b[1]]


class Describe(ProcessWindowFunction):
    def process(self, key: Any, context: Any, elements: Any) -> Any:
        window = context.window()
        yield (key, window.start, window.end, sorted(elements))


class ApplyCount(WindowFunction):
    def apply(self, key: Any, window: Any, inputs: Any) -> Any:
        return [(key, window.max_timestamp(), len(list(inputs)))]


DATA = [("a", 1, 1), ("b", 5, 2), ("a", 3, 4), ("a", 4, 12), ("b", 2, 15), ("a", 9, 27)]


def run_windowed(
    parallelism: int, finish: Any, assigner: Any = None, data: Any = DATA
) -> list[Any]:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        # No watermark before the end: nothing is late, whatever the machine's speed.
        strategy = WatermarkStrategy.no_watermarks().with_timestamp_assigner(lambda r, _: r[2])
        keyed = (
            env.from_source(TestingSource(data), strategy)
            .map(lambda r: (r[0], r[1]))
            .key_by(lambda r: r[0])
        )
        finish(keyed.window(assigner or TumblingEventTimeWindows.of(Duration.of_millis(10))))
        finish.result.sink_to(sink)

    run_local(build, parallelism=parallelism)
    return sorted(sink.committed, key=repr)


class Finish:
    def __init__(self, how: Any) -> None:
        self.how = how
        self.result: Any = None

    def __call__(self, windowed: Any) -> None:
        self.result = self.how(windowed)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (lambda w: w.reduce(add), [("a", 4), ("a", 4), ("a", 9), ("b", 2), ("b", 5)]),
        (lambda w: w.sum(1), [("a", 4), ("a", 4), ("a", 9), ("b", 2), ("b", 5)]),
        (lambda w: w.aggregate(Average()), [2.0, 2.0, 4.0, 5.0, 9.0]),
        (
            lambda w: w.process(Describe()),
            [
                ("a", 0, 10, [("a", 1), ("a", 3)]),
                ("a", 10, 20, [("a", 4)]),
                ("a", 20, 30, [("a", 9)]),
                ("b", 0, 10, [("b", 5)]),
                ("b", 10, 20, [("b", 2)]),
            ],
        ),
        (
            lambda w: w.reduce(add, Describe()),
            [
                ("a", 0, 10, [("a", 4)]),
                ("a", 10, 20, [("a", 4)]),
                ("a", 20, 30, [("a", 9)]),
                ("b", 0, 10, [("b", 5)]),
                ("b", 10, 20, [("b", 2)]),
            ],
        ),
        (
            lambda w: w.aggregate(Average(), Describe()),
            [
                ("a", 0, 10, [2.0]),
                ("a", 10, 20, [4.0]),
                ("a", 20, 30, [9.0]),
                ("b", 0, 10, [5.0]),
                ("b", 10, 20, [2.0]),
            ],
        ),
        (
            lambda w: w.apply(ApplyCount()),
            [("a", 9, 2), ("a", 19, 1), ("a", 29, 1), ("b", 9, 1), ("b", 19, 1)],
        ),
    ],
    ids=["reduce", "sum", "aggregate", "process", "reduce+process", "aggregate+process", "apply"],
)
def test_window_functions(parallelism: int, how: Any, expected: list[Any]) -> None:
    assert run_windowed(parallelism, Finish(how)) == sorted(expected, key=repr)


def test_sessions_merge_and_process_sees_the_merged_window(parallelism: int) -> None:
    data = [("a", 1, 0), ("a", 1, 4), ("b", 1, 5), ("a", 1, 20), ("a", 1, 12), ("b", 1, 9)]
    got = run_windowed(
        parallelism,
        Finish(lambda w: w.process(Describe())),
        EventTimeSessionWindows.with_gap(Duration.of_millis(5)),
        data,
    )
    assert got == sorted(
        [
            ("a", 0, 9, [("a", 1), ("a", 1)]),
            ("a", 12, 17, [("a", 1)]),
            ("a", 20, 25, [("a", 1)]),
            ("b", 5, 14, [("b", 1), ("b", 1)]),
        ],
        key=repr,
    )


def test_dynamic_session_gaps(parallelism: int) -> None:
    data = [("a", 3, 0), ("a", 1, 5), ("a", 1, 9)]
    got = run_windowed(
        parallelism,
        Finish(lambda w: w.process(Describe())),
        EventTimeSessionWindows.with_dynamic_gap(lambda r: r[1] * 3),
        data,
    )
    # 0 opens [0, 9); 5 extends it to [0, 9) (its own [5, 8)); 9 touches 9: [0, 12)
    assert got == [("a", 0, 12, [("a", 1), ("a", 1), ("a", 3)])]


class WindowAndGlobalCounts(ProcessWindowFunction):
    def __init__(self) -> None:
        self.cleared: list[tuple[Any, int]] = []

    def open(self, runtime_context: RuntimeContext) -> None:
        self.fired = ValueStateDescriptor("fired", default_value=0)
        self.seen = ValueStateDescriptor("seen", default_value=0)

    def process(self, key: Any, context: Any, elements: Any) -> Any:
        fired = context.window_state().get_state(self.fired)
        fired.update(fired.value() + 1)
        seen = context.global_state().get_state(self.seen)
        seen.update(seen.value() + len(elements))
        yield (key, context.window().end, fired.value(), seen.value())

    def clear(self, context: Any) -> None:
        context.window_state().get_state(self.fired).clear()
        self.cleared.append((context.window().end, context.current_watermark()))


@pytest.mark.parametrize("path", PATHS)
def test_window_state_global_state_and_clear(path: str) -> None:
    fn = WindowAndGlobalCounts()
    spec = WindowSpec(
        TumblingEventTimeWindows.of(10),
        WindowContents("list"),
        window_function=fn,
        trigger=GenericEventTimeTrigger() if path == "generic" else None,
        allowed_lateness=10,
        user_functions=[fn],
    )
    h = Harness(make_window_operator(spec), lambda r: r[0])
    h.process([("a", 1), ("a", 2)], [1, 2])
    h.watermark(9)
    h.element(("a", 3), 3)  # late but allowed: fires again, window state says 2nd firing
    h.element(("a", 4), 12)
    h.watermark(19)
    assert [r for r, _ in h.take()] == [("a", 10, 1, 2), ("a", 10, 2, 5), ("a", 20, 1, 6)]
    assert fn.cleared == [(10, 19)]
    backend = h.operator.backend  # type: ignore[attr-defined]
    assert list(backend.get_keys("fired", (0, 10))) == []
    assert list(backend.get_keys("fired", (10, 20))) == ["a"]


class FlushOnMarker(Trigger):
    """Fires and purges when a record says "flush"; otherwise fires at the window's end."""

    def on_element(self, element: Any, timestamp: Any, window: Any, ctx: Any) -> TriggerResult:
        if element[1] == "flush":
            return TriggerResult.FIRE_AND_PURGE
        ctx.register_event_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: Any, ctx: Any) -> TriggerResult:
        return TriggerResult.FIRE if time == window.max_timestamp() else TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: Any, ctx: Any) -> TriggerResult:
        return TriggerResult.CONTINUE

    def clear(self, window: Any, ctx: Any) -> None:
        ctx.delete_event_time_timer(window.max_timestamp())


def test_custom_trigger(parallelism: int) -> None:
    data = [("a", "x", 1), ("a", "flush", 2), ("a", "y", 3), ("b", "z", 4)]

    def names(w: Any) -> Any:
        return w.trigger(FlushOnMarker()).process(Describe())

    got = run_windowed(parallelism, Finish(names), data=data)
    assert got == sorted(
        [
            ("a", 0, 10, [("a", "flush"), ("a", "x")]),
            ("a", 0, 10, [("a", "y")]),
            ("b", 0, 10, [("b", "z")]),
        ],
        key=repr,
    )


def test_count_trigger_replaces_the_event_time_trigger(parallelism: int) -> None:
    data = [("a", i, i) for i in range(1, 8)]
    got = run_windowed(
        parallelism, Finish(lambda w: w.trigger(CountTrigger.of(2)).reduce(add)), data=data
    )
    assert got == sorted([("a", 3), ("a", 10), ("a", 21)], key=repr)  # at 2, 4, 6 elements


def test_global_windows_with_a_purging_count_trigger_carry_the_max_timestamp() -> None:
    spec = WindowSpec(
        GlobalWindows.create(),
        WindowContents("reduce", reduce=add),
        trigger=PurgingTrigger.of(CountTrigger.of(2)),
    )
    h = Harness(make_window_operator(spec), lambda r: r[0])
    h.process([("a", 1), ("b", 1), ("a", 2), ("a", 3), ("a", 4)])
    assert h.take() == [(("a", 3), MAX), (("a", 7), MAX)]
    h.watermark(MAX)
    assert h.take() == []  # global windows never fire on time


def test_processing_time_sessions_on_the_manual_clock() -> None:
    spec = WindowSpec(
        ProcessingTimeSessionWindows.with_gap(10), WindowContents("reduce", reduce=add)
    )
    h = Harness(make_window_operator(spec), lambda r: r[0])
    h.element(("a", 1))
    h.advance(5)
    h.element(("a", 2))  # [5, 15) merges with [0, 10)
    h.advance(8)  # now 13: the session is [0, 15), it fires when the clock reaches 14
    assert h.take() == []
    h.advance(1)
    assert h.take() == [(("a", 3), 14)]
    h.element(("a", 4))  # a new session: the old one was cleaned when it fired
    h.advance(100)
    assert h.take() == [(("a", 4), 23)]


def test_processing_time_windows_need_no_timestamps(parallelism: int) -> None:
    # Nothing advances the clock: a processing-time window never fires on a bounded input
    # (as in Flink), but records without timestamps are accepted.
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        (
            env.from_collection([("a", 1), ("b", 2)])
            .key_by(lambda r: r[0])
            .window(TumblingProcessingTimeWindows.of(Duration.of_hours(1)))
            .reduce(add)
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    assert sink.committed == []


def test_records_without_timestamps_fail_with_what_to_do() -> None:
    def build(env: StreamEnvironment) -> None:
        (
            env.from_collection([("a", 1)])
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(10))
            .reduce(add)
            .name("sums")
            .print()
        )

    with pytest.raises(JobFailedError) as info:
        run_local(build)
    message = str(info.value.__cause__)
    assert "'sums'" in message
    assert "assign_timestamps_and_watermarks" in message
    assert "timestamp assigner" in message


def test_an_assigner_returning_none_names_the_record() -> None:
    strategy = WatermarkStrategy.no_watermarks().with_timestamp_assigner(lambda r, _: r[2])

    def build(env: StreamEnvironment) -> None:
        (
            env.from_source(TestingSource([("a", 1, 3), ("b", 1, None)]), strategy)
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(10))
            .reduce(add)
            .print()
        )

    with pytest.raises(JobFailedError) as info:
        run_local(build)
    assert "('b', 1, None)" in str(info.value.__cause__)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: TumblingEventTimeWindows.of(0), "size must be > 0"),
        (lambda: TumblingEventTimeWindows.of(-5), "size must be > 0"),
        (lambda: SlidingEventTimeWindows.of(10, 20), "larger than the size"),
        (lambda: SlidingEventTimeWindows.of(10, 0), "slide must be > 0"),
        (lambda: TumblingEventTimeWindows.of(10, 10), "offset"),
        (lambda: EventTimeSessionWindows.with_gap(0), "gap must be > 0"),
        (lambda: ProcessingTimeSessionWindows.with_gap(Duration.zero()), "gap must be > 0"),
        (lambda: CountTrigger.of(0), "count >= 1"),
        (lambda: TumblingEventTimeWindows.of(1.5), "Duration or whole milliseconds"),
    ],
)
def test_bad_windows_are_refused_when_built(make: Any, words: str) -> None:
    with pytest.raises(JobDefinitionError, match=words):
        make()


def test_bad_window_pipelines_are_refused_when_built() -> None:
    env = StreamEnvironment()
    keyed = env.from_collection([1]).key_by(lambda r: r)
    with pytest.raises(JobDefinitionError, match="WindowAssigner"):
        keyed.window(TimeWindow(0, 10))
    windowed = keyed.window(TumblingEventTimeWindows.of(10))
    with pytest.raises(JobDefinitionError, match="allowed_lateness"):
        windowed.allowed_lateness(-1)
    with pytest.raises(JobDefinitionError, match="Trigger"):
        windowed.trigger(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(JobDefinitionError, match="OutputTag"):
        windowed.side_output_late_data("late")  # type: ignore[arg-type]
    with pytest.raises(JobDefinitionError, match="reduce function"):
        windowed.reduce(42)
    with pytest.raises(JobDefinitionError, match="get_result"):
        windowed.aggregate(object())
    with pytest.raises(JobDefinitionError, match="window function"):
        windowed.reduce(add, 42)
    sessions = keyed.window(EventTimeSessionWindows.with_gap(5))

    class NoMerge(FlushOnMarker):
        pass

    with pytest.raises(JobDefinitionError, match="cannot merge"):
        sessions.trigger(NoMerge())


def test_late_side_output_in_a_job(parallelism: int) -> None:
    late_tag = OutputTag("too-late")
    sink, late = TestingSink(), TestingSink()
    data = [("a", 1, 1), ("a", 1, 30), ("a", 1, 2), ("b", 1, 25), ("b", 1, 5)]

    def build(env: StreamEnvironment) -> None:
        strategy = WatermarkStrategy.for_generator(
            lambda: PunctuatedBoundedOutOfOrderness(0)
        ).with_timestamp_assigner(lambda r, _: r[2])
        result = (
            env.from_source(TestingSource(data), strategy)
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(10))
            .side_output_late_data(late_tag)
            .reduce(lambda a, b: (a[0], a[1] + b[1], max(a[2], b[2])))
        )
        result.sink_to(sink)
        result.get_side_output(late_tag).sink_to(late)

    run_local(build, parallelism=parallelism)
    # after ("a", 1, 30) the watermark is 29: [0, 10) and [20, 30) are done
    assert sorted(late.committed) == [("a", 1, 2), ("b", 1, 5), ("b", 1, 25)]
    assert sorted(sink.committed) == [("a", 1, 1), ("a", 1, 30)]
