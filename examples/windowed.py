"""Windowed job: clicks per page in 10-second event-time windows, with late data on the side.

Run it with ``streamjob run examples/windowed.py --parallelism 2`` (or ``python
examples/windowed.py``). Clicks are generated deterministically, 3,000 per second: 600 clicks
over 10 pages, 100 ms of event time apart, arriving up to 3 seconds out of order, and every 97th
click arrives a full minute late. Watermarks allow 2 seconds of disorder and windows accept 1
second more (``allowed_lateness``), so some clicks re-fire their window and the very late ones
are printed as late data instead of being lost.
"""

from __future__ import annotations

from typing import Any

from streamjob import Duration, GeneratorSource, OutputTag, StreamEnvironment, WatermarkStrategy
from streamjob.windows import AggregateFunction, ProcessWindowFunction, TumblingEventTimeWindows

PAGES = [f"/page/{n}" for n in range(10)]
CLICKS = 600
LATE = OutputTag("late-clicks")


def click(i: int) -> tuple[str, str, int]:
    """(page, user, event time in ms): record ``i`` is a pure function of ``i``."""
    disorder = (i * 7919) % 3000
    if i % 97 == 0:
        disorder = 60_000
    return (PAGES[(i * 31) % len(PAGES)], f"user-{(i * 13) % 40}", 1_000_000 + i * 100 - disorder)


class CountClicks(AggregateFunction):
    """Clicks of one page in one window."""

    def create_accumulator(self) -> int:
        return 0

    def add(self, value: Any, accumulator: int) -> int:
        return accumulator + 1

    def get_result(self, accumulator: int) -> int:
        return accumulator

    def merge(self, a: int, b: int) -> int:
        return a + b


class WithWindow(ProcessWindowFunction):
    """Attaches the window's start and end to the pre-aggregated result."""

    def process(self, key: Any, context: Any, elements: Any) -> Any:
        (clicks,) = elements
        window = context.window()
        yield {
            "page": key,
            "start": window.start,
            "end": window.end,
            "clicks": clicks,
        }


def page_stats(env: StreamEnvironment) -> tuple[Any, Any]:
    """The windowed results and the late clicks, as two streams."""
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_seconds(2)
    ).with_timestamp_assigner(lambda c, _: c[2])
    stats = (
        env.from_source(
            GeneratorSource(click, count=CLICKS, rate_per_second=3000), strategy, "clicks"
        )
        .key_by(lambda c: c[0])
        .window(TumblingEventTimeWindows.of(Duration.of_seconds(10)))
        .allowed_lateness(Duration.of_seconds(1))
        .side_output_late_data(LATE)
        .aggregate(CountClicks(), WithWindow())
        .uid("page-stats")
    )
    return stats, stats.get_side_output(LATE)


def build(env: StreamEnvironment) -> None:
    env.set_auto_watermark_interval(50)
    stats, late = page_stats(env)
    stats.print("window")
    late.print("late")


if __name__ == "__main__":
    env = StreamEnvironment(parallelism=2)
    build(env)
    env.execute("windowed")
