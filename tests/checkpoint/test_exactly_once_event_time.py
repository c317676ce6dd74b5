"""Exactly-once with event time: windows (W2 in small) and keyed timers, through real failures.

Aspects covered: a 1-second tumbling-window sum over out-of-order events (disorder within the
watermark bound) and a KeyedProcessFunction that counts per key and second in MapState and
emits the count from an event-time timer; each crashes mid-stream (after two completed
checkpoints, so window contents and timers are restored from a checkpoint), fails over, and
must commit exactly the output of a plain-Python reference; at parallelism 1 and 2.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streamjob import Duration, GeneratorSource, StreamEnvironment, WatermarkStrategy
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import FixedDelayRestart
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import MapStateDescriptor
from streamjob.testing import TestingSink, run_local
from streamjob.windows import TumblingEventTimeWindows
from tests.checkpoint.jobs import CrashOnce, Progress

EVENTS = 8000
RATE = 8000
KEYS = 13
BOUND_MS = 200


def event(i: int) -> tuple[str, int, int]:
    """(key, value, event time): 1 ms apart, shuffled by up to +-99 ms (< the bound)."""
    return (f"k{(i * 31) % KEYS}", i % 97, 10_000 + i + ((i * 7919) % 199) - 99)


def _source() -> GeneratorSource:
    return GeneratorSource(event, count=EVENTS, rate_per_second=RATE)


def _watermarks() -> WatermarkStrategy:
    return WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(BOUND_MS)
    ).with_timestamp_assigner(lambda e, _: e[2])


def windowed_job(sink: TestingSink, progress: Progress) -> Any:
    def build(env: StreamEnvironment) -> None:
        (
            env.from_source(_source(), _watermarks(), "events")
            .uid("events")
            .map(lambda e: (e[0], e[2], e[1]))  # CrashOnce reads a position in slot 1
            .map(CrashOnce(10_000 + EVENTS // 10, progress))
            .uid("crash")
            .map(lambda e: (e[0], e[2]))
            .key_by(lambda e: e[0])
            .window(TumblingEventTimeWindows.of(Duration.of_seconds(1)))
            .reduce(lambda a, b: (a[0], a[1] + b[1]), window_function=_with_window)
            .uid("windows")
            .sink_to(sink)
            .uid("sink")
        )

    return build


def _with_window(key: Any, context: Any, values: Any) -> Any:
    for value in values:
        yield (key, context.window().end, value[1])


def windowed_reference() -> Counter[tuple[str, int, int]]:
    sums: dict[tuple[str, int], int] = {}
    for i in range(EVENTS):
        key, value, ts = event(i)
        end = (ts // 1000 + 1) * 1000
        sums[(key, end)] = sums.get((key, end), 0) + value
    return Counter((k, end, v) for (k, end), v in sums.items())


class CountPerSecond(KeyedProcessFunction):
    """Counts events per key and second; an event-time timer emits each second's count."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.counts = runtime_context.get_map_state(MapStateDescriptor("per-second"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        end = (ctx.timestamp() // 1000 + 1) * 1000
        self.counts.put(end, (self.counts.get(end) or 0) + 1)
        ctx.timer_service().register_event_time_timer(end)
        return None

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        count = self.counts.get(timestamp)
        self.counts.remove(timestamp)
        yield (ctx.get_current_key(), timestamp, count)


def timers_job(sink: TestingSink, progress: Progress) -> Any:
    def build(env: StreamEnvironment) -> None:
        (
            env.from_source(_source(), _watermarks(), "events")
            .uid("events")
            .map(lambda e: (e[0], e[2], e[2]))
            .map(CrashOnce(10_000 + EVENTS // 10, progress))
            .uid("crash")
            .key_by(lambda e: e[0])
            .process(CountPerSecond())
            .uid("timers")
            .sink_to(sink)
            .uid("sink")
        )

    return build


def timers_reference() -> Counter[tuple[str, int, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    for i in range(EVENTS):
        key, _, ts = event(i)
        counts[(key, (ts // 1000 + 1) * 1000)] += 1
    return Counter((k, end, c) for (k, end), c in counts.items())


def _run(job: Any, tmp_path: Path, p: int) -> tuple[TestingSink, Any]:
    sink = TestingSink()
    progress = Progress()
    faults = progress.attach(FaultInjector())
    result = run_local(
        job(sink, progress),
        parallelism=p,
        checkpoint_dir=str(tmp_path / "chk"),
        checkpoint_interval_ms=50,
        restart=FixedDelayRestart(attempts=3, delay_s=0.0),
        faults=faults,
    )
    return sink, result


def _assert_restored(result: Any) -> None:
    assert len(result.attempts) == 2, "the job did not fail over exactly once"
    restored = result.attempts[1]
    assert restored.restored_checkpoint_id is not None and restored.restored_checkpoint_id >= 2
    assert 0 < restored.source_records < EVENTS


@pytest.mark.parametrize("p", [1, 2])
def test_windows_are_exactly_once_through_a_crash(tmp_path: Path, p: int) -> None:
    sink, result = _run(windowed_job, tmp_path, p)
    _assert_restored(result)
    assert Counter(sink.committed) == windowed_reference()


@pytest.mark.parametrize("p", [1, 2])
def test_timers_are_exactly_once_through_a_crash(tmp_path: Path, p: int) -> None:
    sink, result = _run(timers_job, tmp_path, p)
    _assert_restored(result)
    assert Counter(sink.committed) == timers_reference()
