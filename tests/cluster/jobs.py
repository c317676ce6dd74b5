"""Jobs for the multi-process tests: W1 and W2 in small, into the exactly-once FileSink.

The processes import this file, so its configuration comes from environment variables:
``STREAMJOB_TEST_OUT`` (the sink's directory), ``STREAMJOB_TEST_EVENTS``,
``STREAMJOB_TEST_RATE``. Committed output = the finished part files.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from streamjob import Duration, FileSink, GeneratorSource, StreamEnvironment, WatermarkStrategy
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import ValueStateDescriptor
from streamjob.windows import TumblingEventTimeWindows

NUM_KEYS = 37


def key_of(i: int) -> str:
    return f"k{(i * 7919) % NUM_KEYS}"


class CountPerKey(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))
        self.subtask = runtime_context.get_index_of_this_subtask()

    def process_element(self, value: Any, ctx: Any) -> Any:
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        return ((value[0], n, self.subtask),)


def build(env: StreamEnvironment) -> None:
    events = int(os.environ.get("STREAMJOB_TEST_EVENTS", "20000"))
    rate = float(os.environ.get("STREAMJOB_TEST_RATE", "10000"))
    source = GeneratorSource(lambda i: (key_of(i), i), count=events, rate_per_second=rate)
    stream = env.from_source(source, source_name="numbers").uid("numbers")
    if os.environ.get("STREAMJOB_TEST_VARIANT"):  # a different version of the job code
        stream = stream.filter(lambda r: True).uid("extra-filter")
    (
        stream.key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(FileSink(os.environ["STREAMJOB_TEST_OUT"], encoder=json.dumps))
        .uid("sink")
    )


def event(i: int) -> tuple[str, int, int]:
    """W2 in small: (key, value, event time) 1 ms apart, shuffled within +-99 ms."""
    return (key_of(i), i % 97, 10_000 + i + ((i * 7919) % 199) - 99)


def _sum_window(key: Any, context: Any, values: Any) -> Any:
    for value in values:
        yield (key, context.window().end, value[1])


def build_windowed(env: StreamEnvironment) -> None:
    events = int(os.environ.get("STREAMJOB_TEST_EVENTS", "20000"))
    rate = float(os.environ.get("STREAMJOB_TEST_RATE", "10000"))
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(200)
    ).with_timestamp_assigner(lambda e, _: e[2])
    (
        env.from_source(GeneratorSource(event, count=events, rate_per_second=rate), strategy)
        .uid("events")
        .key_by(lambda e: e[0])
        .window(TumblingEventTimeWindows.of(Duration.of_seconds(1)))
        .reduce(lambda a, b: (a[0], a[1] + b[1], a[2]), window_function=_sum_window)
        .uid("windows")
        .sink_to(FileSink(os.environ["STREAMJOB_TEST_OUT"], encoder=json.dumps))
        .uid("sink")
    )


def windowed_reference(events: int) -> Counter[tuple[str, int, int]]:
    sums: dict[tuple[str, int], int] = {}
    for i in range(events):
        key, value, ts = event(i)
        end = (ts // 1000 + 1) * 1000
        sums[(key, end)] = sums.get((key, end), 0) + value
    return Counter((k, end, v) for (k, end), v in sums.items())


def committed(directory: Path) -> list[tuple[str, int, int]]:
    """Every record in the finished part files (in-progress uploads are invisible)."""
    out = []
    for path in sorted(directory.glob("part-*")):
        out.extend(tuple(json.loads(line)) for line in path.read_text().splitlines())
    return out


def expected_pairs(events: int) -> Counter[tuple[str, int]]:
    counts: Counter[str] = Counter(key_of(i) for i in range(events))
    return Counter((k, n) for k, c in counts.items() for n in range(1, c + 1))
