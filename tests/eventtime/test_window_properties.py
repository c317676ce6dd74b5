"""Windows on randomized out-of-order input equal a brute-force reference (``reference.py``).

Aspects covered, each at parallelism 1 and 2:
- tumbling, sliding and session event-time windows and global windows with a (purging) count
  trigger, with and without allowed lateness; tumbling and sliding windows both on the fast
  path and (under a custom trigger type) on the generic path;
- watermarks generated per record (deterministic whatever the batching) and periodically
  from a manual clock that moves a fixed tick per polled batch;
- records late for all their windows reach the late-data side output, exactly those;
- processing-time tumbling and sliding windows driven by the manual clock (operator harness),
  on both paths.

The source is non-parallel and feeds the window operator directly (one input channel per
window subtask), so each subtask sees the watermarks in the same order relative to its records
as the reference does; an operator of parallelism 2 in between would interleave two channels
nondeterministically.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamjob import OutputTag, StreamEnvironment, WatermarkStrategy
from streamjob.clock import ManualClock
from streamjob.eventtime.generators import PunctuatedBoundedOutOfOrderness
from streamjob.testing import TestingSink, TestingSource, run_local
from streamjob.windows import (
    CountTrigger,
    EventTimeSessionWindows,
    EventTimeTrigger,
    GlobalWindows,
    ProcessingTimeTrigger,
    PurgingTrigger,
    SlidingEventTimeWindows,
    SlidingProcessingTimeWindows,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
)
from streamjob.windows.functions import WindowContents
from streamjob.windows.operator_base import WindowSpec
from streamjob.windows.stream import make_window_operator

from . import reference
from .harness import Harness
from .sources import TickingSource

LATE = OutputTag("late")
KINDS = [
    "tumbling",
    "tumbling-generic",
    "sliding",
    "sliding-generic",
    "session",
    "global",
    "global-purging",
]


class GenericEventTimeTrigger(EventTimeTrigger):
    """The default trigger's behaviour under another type: runs the generic operator."""


class GenericProcessingTimeTrigger(ProcessingTimeTrigger):
    """Likewise for processing time."""


records_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"]),
        st.integers(1, 9),
        st.integers(0, 30),  # disorder subtracted from the record's position
    ),
    max_size=60,
).map(lambda rows: [(k, v, max(0, 2 * i - d)) for i, (k, v, d) in enumerate(rows)])


def sum_values(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    return (a[0], a[1] + b[1], *a[2:])


def windowed(kind: str, stream: Any, lateness: int) -> Any:
    keyed = stream.key_by(lambda r: r[0])
    if kind.startswith("tumbling"):
        w = keyed.window(TumblingEventTimeWindows.of(20))
    elif kind.startswith("sliding"):
        w = keyed.window(SlidingEventTimeWindows.of(30, 10))
    elif kind == "session":
        w = keyed.window(EventTimeSessionWindows.with_gap(8))
    elif kind == "global":
        w = keyed.window(GlobalWindows.create()).trigger(CountTrigger.of(3))
    else:
        w = keyed.window(GlobalWindows.create()).trigger(PurgingTrigger.of(CountTrigger.of(2)))
    if kind.endswith("-generic"):
        w = w.trigger(GenericEventTimeTrigger())
    return w.allowed_lateness(lateness).side_output_late_data(LATE).reduce(sum_values)


def expected(kind: str, stream: list[Any], lateness: int) -> Any:
    if kind.startswith("tumbling"):
        return reference.aligned_windows(stream, size=20, slide=20, lateness=lateness)
    if kind.startswith("sliding"):
        return reference.aligned_windows(stream, size=30, slide=10, lateness=lateness)
    if kind == "session":
        return reference.sessions(stream, gap=8, lateness=lateness)
    if kind == "global":
        return reference.global_count(stream, count=3, purge=False)
    return reference.global_count(stream, count=2, purge=True)


class _Stamp:
    def __call__(self, value: Any, ctx: Any) -> Any:
        return ((ctx.timestamp(), value[0], value[1]),)


def run_job(
    kind: str, source: Any, strategy: WatermarkStrategy, lateness: int, p: int, clock: Any = None
) -> tuple[list[Any], list[Any]]:
    out, late = TestingSink(), TestingSink()

    def build(env: StreamEnvironment) -> None:
        stream = env.from_source(source, strategy)
        results = windowed(kind, stream, lateness)
        results.process(_Stamp()).sink_to(out)
        results.get_side_output(LATE).sink_to(late)

    run_local(build, parallelism=p, clock=clock)
    return sorted(out.committed), sorted(late.committed)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30, deadline=None)
@given(
    records=records_strategy,
    bound=st.sampled_from([0, 4, 12]),
    lateness=st.sampled_from([0, 10]),
)
def test_windows_with_per_record_watermarks(
    kind: str, p: int, records: list[Any], bound: int, lateness: int
) -> None:
    strategy = WatermarkStrategy.for_generator(
        lambda: PunctuatedBoundedOutOfOrderness(bound)
    ).with_timestamp_assigner(lambda r, _: r[2])
    got, got_late = run_job(kind, TestingSource(records, batch_size=7), strategy, lateness, p)
    stream = reference.per_record_watermarks(records, bound)
    want, want_late = expected(kind, stream, lateness)
    assert got == want
    assert got_late == want_late


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("kind", ["tumbling", "sliding-generic", "session"])
@settings(max_examples=15, deadline=None)
@given(
    records=records_strategy,
    bound=st.sampled_from([0, 6]),
    lateness=st.sampled_from([0, 10]),
    batch=st.integers(1, 6),
    tick=st.sampled_from([50, 100, 200]),
)
def test_windows_with_periodic_watermarks_on_a_manual_clock(
    kind: str, p: int, records: list[Any], bound: int, lateness: int, batch: int, tick: int
) -> None:
    clock = ManualClock(0)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(bound).with_timestamp_assigner(
        lambda r, _: r[2]
    )
    source = TickingSource(records, clock, batch=batch, tick_ms=tick)
    got, got_late = run_job(kind, source, strategy, lateness, p, clock=clock)
    stream = reference.periodic_watermarks(
        records, batch=batch, tick=tick, interval=200, bound=bound
    )
    want, want_late = expected(kind, stream, lateness)
    assert got == want
    assert got_late == want_late


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("rec"), st.tuples(st.sampled_from("abc"), st.integers(1, 9))),
            st.tuples(st.just("advance"), st.integers(0, 25)),
        ),
        max_size=40,
    ),
    sliding=st.booleans(),
    generic=st.booleans(),
)
def test_processing_time_windows_fire_as_the_clock_passes_their_end(
    steps: list[tuple[str, Any]], sliding: bool, generic: bool
) -> None:
    assigner: Any = (
        SlidingProcessingTimeWindows.of(20, 10) if sliding else TumblingProcessingTimeWindows.of(10)
    )
    trigger = GenericProcessingTimeTrigger() if generic else None
    spec = WindowSpec(assigner, WindowContents("reduce", reduce=sum_values), trigger=trigger)
    harness = Harness(make_window_operator(spec), lambda r: r[0])
    for kind, payload in steps:
        if kind == "rec":
            harness.element(payload)
        else:
            harness.advance(payload)
    got = sorted((ts, r[0], r[1]) for r, ts in harness.take())
    want = reference.processing_time_windows(steps, size=assigner.size, slide=assigner.slide)
    assert got == want
