"""Watermarks: strategies, emission, idleness, and how they move through a job.

Aspects covered:
- bounded out-of-orderness is ``max_timestamp - bound - 1``; monotonous is bound 0; watermarks
  never go back;
- periodic emission follows the injected clock and the configured interval;
- a per-record generator splits the batch right after each record that yields a watermark;
- ``with_idleness`` marks an output idle after the timeout without records and active again
  with the next record; an idle source does not hold back windows downstream (and, as a
  negative control, the same job without idleness waits for it);
- a task's watermark is the minimum over its inputs: a slow source's records are not late;
- watermarks pass chains and two exchanges; bounded sources end with the maximum watermark;
- ``assign_timestamps_and_watermarks`` drops upstream watermarks except the final maximum;
- bad strategies are refused with a message saying what to pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob import (
    Duration,
    JobDefinitionError,
    StreamEnvironment,
    WatermarkStrategy,
)
from streamjob.clock import ManualClock
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter
from streamjob.eventtime.emitter import WatermarkEmitter
from streamjob.eventtime.generators import (
    BoundedOutOfOrdernessGenerator,
    PunctuatedBoundedOutOfOrderness,
)
from streamjob.eventtime.operator import TimestampsAndWatermarksOperator
from streamjob.eventtime.status import emit_watermark_status
from streamjob.runtime.events import MAX_WATERMARK, MIN_WATERMARK, Batch, WatermarkStatus
from streamjob.runtime.operators.base import (
    ChainedOutput,
    Output,
    RoutingOutput,
    StreamOperator,
    WriterOutput,
)
from streamjob.testing import TestingSink, TestingSource, run_local
from streamjob.windows import TumblingEventTimeWindows

from .harness import RecordingOutput
from .sources import Signal, WaitingSource


class SequenceOutput(Output):
    """Records batches, watermarks and status changes in the order they were emitted."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def emit(self, batch: Batch) -> None:
        self.events.append(("batch", list(batch.records)))

    def emit_side(self, tag: str, batch: Batch) -> None:
        raise AssertionError("no side outputs here")

    def emit_watermark(self, timestamp: int) -> None:
        self.events.append(("wm", timestamp))

    def emit_watermark_status(self, idle: bool) -> None:
        self.events.append(("idle", idle))


def emitter(strategy: WatermarkStrategy, clock: ManualClock, out: Output) -> WatermarkEmitter:
    return WatermarkEmitter(
        strategy, interval_ms=200, clock=clock, output=out, operator_name="source"
    )


def test_bounded_out_of_orderness_is_max_minus_bound_minus_one() -> None:
    generator = BoundedOutOfOrdernessGenerator(3)
    assert generator.current_watermark() == MIN_WATERMARK
    generator.on_batch([5, 3, 10])
    generator.on_batch([7])
    assert generator.current_watermark() == 10 - 3 - 1
    monotonous = WatermarkStrategy.for_monotonous_timestamps().create_generator()
    monotonous.on_batch([42])  # type: ignore[union-attr]
    assert monotonous.current_watermark() == 41  # type: ignore[union-attr]


def test_periodic_emission_follows_the_clock_and_never_goes_back() -> None:
    clock, out = ManualClock(0), SequenceOutput()
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(2))
    e = emitter(strategy.with_timestamp_assigner(lambda r, _: r), clock, out)
    e.emit_batch([10, 4], None)
    e.on_periodic(199)
    assert out.events == [("batch", [10, 4])]
    e.on_periodic(200)
    e.emit_batch([3], None)  # an out-of-order record does not move the watermark back
    e.on_periodic(400)
    e.on_periodic(450)  # interval not over: nothing
    e.emit_batch([20], None)
    e.on_periodic(600)
    e.finish()
    assert out.events == [
        ("batch", [10, 4]),
        ("wm", 7),
        ("batch", [3]),
        ("batch", [20]),
        ("wm", 17),
        ("wm", MAX_WATERMARK),
    ]


def test_a_per_record_generator_splits_the_batch_at_each_watermark() -> None:
    clock, out = ManualClock(0), SequenceOutput()
    strategy = WatermarkStrategy.for_generator(lambda: PunctuatedBoundedOutOfOrderness(0))
    e = emitter(strategy.with_timestamp_assigner(lambda r, _: r), clock, out)
    e.emit_batch([1, 5, 3, 7, 2], None)
    assert out.events == [
        ("batch", [1]),
        ("wm", 0),
        ("batch", [5]),
        ("wm", 4),
        ("batch", [3, 7]),
        ("wm", 6),
        ("batch", [2]),
    ]


def test_idleness_marks_idle_after_the_timeout_and_active_with_the_next_record() -> None:
    clock, out = ManualClock(0), SequenceOutput()
    strategy = (
        WatermarkStrategy.for_monotonous_timestamps()
        .with_timestamp_assigner(lambda r, _: r)
        .with_idleness(Duration.of_millis(300))
    )
    e = emitter(strategy, clock, out)
    e.emit_batch([10], None)
    clock.set(200)
    e.on_periodic(200)
    clock.set(400)
    e.on_periodic(400)  # 400 ms without records, timeout 300: idle
    clock.set(600)
    e.on_periodic(600)  # still idle: no watermark while idle
    e.emit_batch([30], None)
    clock.set(800)
    e.on_periodic(800)
    assert out.events == [
        ("batch", [10]),
        ("wm", 9),
        ("idle", True),
        ("idle", False),
        ("batch", [30]),
        ("wm", 29),
    ]


class _Writer:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def broadcast_event(self, event: Any) -> None:
        self.events.append(event)


class _Plain(StreamOperator):
    """A chained operator without its own status handling: the status passes through it."""

    def __init__(self, output: Output) -> None:
        self.output = output


def test_a_status_reaches_writers_through_chains() -> None:
    writer, inner_writer = _Writer(), _Writer()
    chained = ChainedOutput(_Plain(WriterOutput(inner_writer)))  # type: ignore[arg-type]
    emit_watermark_status(RoutingOutput([WriterOutput(writer), chained], {}), True)  # type: ignore[arg-type]
    assert writer.events == [WatermarkStatus(True)]
    assert inner_writer.events == [WatermarkStatus(True)]


class SignalSink(Sink):
    name = "signal"

    def __init__(self, signal: Signal) -> None:
        self.signal = signal
        self.records: list[Any] = []

    def create_writer(self, context: SinkContext) -> SinkWriter:
        sink = self

        class Writer(SinkWriter):
            def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
                sink.records.extend(records)
                if records:
                    sink.signal.is_set = True

        return Writer()


@pytest.mark.parametrize("idleness", [True, False], ids=["with-idleness", "negative-control"])
def test_an_idle_source_does_not_hold_back_windows(idleness: bool) -> None:
    clock, signal = ManualClock(0), Signal()
    active = WaitingSource(
        [("a", ts) for ts in range(0, 1000, 50)], clock, signal, tick_ms=100, deadline_s=1.0
    )
    idle = WaitingSource([], clock, signal, deadline_s=1.0)
    sink = SignalSink(signal)

    def build(env: StreamEnvironment) -> None:
        strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(
            lambda r, _: r[1]
        )
        idle_strategy = strategy.with_idleness(Duration.of_millis(300)) if idleness else strategy
        (
            env.from_source(active, strategy)
            .union(env.from_source(idle, idle_strategy))
            .map(lambda r: (r[0], 1))
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(100))
            .reduce(lambda a, b: (a[0], a[1] + b[1]))
            .sink_to(sink)
        )

    run_local(build, parallelism=1, clock=clock)
    assert sorted(sink.records) == [("a", 2)] * 10  # complete either way, in the end
    # with idleness, windows fired while both sources were still open
    assert idle.finished_by_signal is idleness
    assert active.finished_by_signal is idleness


def test_the_watermark_is_the_minimum_over_inputs(parallelism: int) -> None:
    # The fast source is far ahead; were the watermark its own, the slow source's records
    # would all be late. As the minimum, nothing is late.
    fast = [("fast", 1, ts) for ts in range(0, 10_000, 100)]
    slow = [("slow", 1, ts) for ts in range(0, 500, 10)]
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        strategy = WatermarkStrategy.for_generator(
            lambda: PunctuatedBoundedOutOfOrderness(0)
        ).with_timestamp_assigner(lambda r, _: r[2])
        (
            env.from_source(TestingSource(fast, batch_size=5), strategy)
            .union(env.from_source(TestingSource(slow, batch_size=1), strategy))
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(1000))
            .reduce(lambda a, b: (a[0], a[1] + b[1], a[2]))
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    totals: dict[str, int] = {}
    for key, count, _ in sink.committed:
        totals[key] = totals.get(key, 0) + count
    assert totals == {"fast": 100, "slow": 50}


def test_watermarks_pass_chains_and_two_exchanges(parallelism: int) -> None:
    data = [(f"k{i % 3}", 1, ts) for i, ts in enumerate([3, 1, 12, 7, 25, 14, 31, 22, 45, 41])]
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        strategy = WatermarkStrategy.for_generator(
            lambda: PunctuatedBoundedOutOfOrderness(10)
        ).with_timestamp_assigner(lambda r, _: r[2])
        per_key = (
            env.from_source(TestingSource(data), strategy)
            .map(lambda r: (r[0], r[1]))  # chained with the source
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(10))
            .reduce(lambda a, b: (a[0], a[1] + b[1]))
        )
        (
            per_key.map(lambda r: ("all", r[1]))
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(20))
            .reduce(lambda a, b: (a[0], a[1] + b[1]))
            .process(lambda r, ctx: [(ctx.timestamp(), r[1])])
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    # level 1 fires (9: 2 + 1), (19: 2), (29: 2), (39: 1), (49: 1 + 1); level 2 sums by 20 ms
    assert sorted(sink.committed) == [(19, 5), (39, 3), (59, 2)]


def test_assign_timestamps_and_watermarks_in_the_middle_of_a_job(parallelism: int) -> None:
    sink = TestingSink()
    data = [("a", 5), ("b", 3), ("a", 17), ("b", 12), ("a", 2)]

    def build(env: StreamEnvironment) -> None:
        strategy = WatermarkStrategy.for_generator(
            lambda: PunctuatedBoundedOutOfOrderness(0)
        ).with_timestamp_assigner(lambda r, _: r[1])
        (
            env.from_collection(data)
            .assign_timestamps_and_watermarks(strategy)
            .set_parallelism(1)  # chained with the collection: one channel to each window
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(10))
            .reduce(lambda a, b: (a[0], a[1] + b[1]))
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    # ("a", 2) comes after the watermark reached 16: late, dropped
    assert sorted(sink.committed) == [("a", 5), ("a", 17), ("b", 3), ("b", 12)]


def test_the_operator_drops_upstream_watermarks_but_the_final_one() -> None:
    from .harness import Harness

    strategy = WatermarkStrategy.for_generator(
        lambda: PunctuatedBoundedOutOfOrderness(0)
    ).with_timestamp_assigner(lambda r, _: r)
    h = Harness(TimestampsAndWatermarksOperator(strategy), lambda r: r)
    h.operator.process_batch(Batch([5, 9]), 0)
    h.watermark(100)
    h.watermark(MAX_WATERMARK)
    out: RecordingOutput = h.output
    assert out.records == [(5, 5), (9, 9)]
    assert out.watermarks == [4, 8, MAX_WATERMARK]


def test_bad_strategies_are_refused() -> None:
    with pytest.raises(JobDefinitionError, match="positive"):
        WatermarkStrategy.for_monotonous_timestamps().with_idleness(0)
    with pytest.raises(JobDefinitionError, match=">= 0"):
        WatermarkStrategy.for_bounded_out_of_orderness(-5)
    with pytest.raises(JobDefinitionError, match="extract_timestamp"):
        WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(42)
    with pytest.raises(JobDefinitionError, match="factory"):
        WatermarkStrategy.for_generator(42)  # type: ignore[arg-type]
    with pytest.raises(JobDefinitionError, match="on_batch"):
        WatermarkStrategy.for_generator(object).create_generator()  # type: ignore[arg-type]

    def build(env: StreamEnvironment) -> None:
        env.from_source(TestingSource([1]), "200ms").print()  # type: ignore[arg-type]

    with pytest.raises(JobDefinitionError, match="WatermarkStrategy"):
        run_local(build)

    def build_assign(env: StreamEnvironment) -> None:
        env.from_collection([1]).assign_timestamps_and_watermarks(200).print()

    with pytest.raises(JobDefinitionError, match="WatermarkStrategy"):
        run_local(build_assign)
