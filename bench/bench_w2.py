"""W2: event-time tumbling windows, 2,000,000 events over 10,000 keys, parallelism 1.

Event ``i`` has timestamp ``i`` ms minus a disorder of up to 200 ms (fixed seed), a key drawn
uniformly from 10,000 and a float value. Watermarks: bounded out-of-orderness 200 ms, emitted
every 200 ms of processing time (fixed here). The job sums the float per key in 1-second
tumbling windows (``reduce``, hashmap backend). Records and timestamps come from precomputed
tables (``GeneratorSource(batch_fn=..., timestamp_fn=TABLE.__getitem__)``), so generating one
costs tens of nanoseconds.

Prints the job's events per second, a plain-Python reference doing the same aggregation over
the same generator (window-major dicts, the baseline), their ratio, the watermark interval and
the peak number of open windows, checks that the job's results equal the reference (no record
dropped as late), then one JSON line with the figures.
"""

from __future__ import annotations

import json
import random
import sys
import time
from operator import itemgetter
from typing import Any

from workloads import load

from streamjob import Duration, GeneratorSource, StreamEnvironment, WatermarkStrategy
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter
from streamjob.windows import TumblingEventTimeWindows

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
NUM_KEYS = 10_000
DISORDER_MS = 200
WINDOW_MS = 1000
WATERMARK_INTERVAL_MS = 200
BATCH = 1024
TABLE_SIZE = 1 << 20


def make_tables(seed: int = 7) -> tuple[list[tuple[str, float]], list[int]]:
    rng = random.Random(seed)
    keys = [f"key-{k}" for k in range(NUM_KEYS)]
    records = [(keys[rng.randrange(NUM_KEYS)], rng.random()) for _ in range(TABLE_SIZE)]
    stamps = [i - rng.randint(0, DISORDER_MS) for i in range(EVENTS)]
    return records, stamps


RECORDS, STAMPS = make_tables()


def w2_records(indices: range) -> list[tuple[str, float]]:
    n = len(RECORDS)
    start = indices.start % n
    if indices.step == 1 and start + len(indices) <= n:
        return RECORDS[start : start + len(indices)]
    return [RECORDS[i % n] for i in indices]


def w2_source(events: int) -> GeneratorSource:
    return GeneratorSource(batch_fn=w2_records, timestamp_fn=STAMPS.__getitem__, count=events)


class CollectingSink(Sink):
    """Keeps results and their timestamps (list.extend per batch: no per-record work)."""

    name = "collect"

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.timestamps: list[int] = []

    def create_writer(self, context: SinkContext) -> SinkWriter:
        return _Writer(self)


class _Writer(SinkWriter):
    def __init__(self, sink: CollectingSink) -> None:
        self._sink = sink

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        self._sink.records.extend(records)
        self._sink.timestamps.extend(timestamps or ())


def run_job(events: int) -> tuple[float, CollectingSink, int]:
    env = StreamEnvironment(parallelism=1)
    env.set_auto_watermark_interval(WATERMARK_INTERVAL_MS)
    sink = CollectingSink()
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(DISORDER_MS))
    (
        env.from_source(w2_source(events), strategy, "generator")
        .key_by(itemgetter(0))
        .window(TumblingEventTimeWindows.of(Duration.of_millis(WINDOW_MS)))
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .uid("window-sum")
        .sink_to(sink)
    )
    started = time.perf_counter()
    result = env.execute("w2")
    elapsed = time.perf_counter() - started
    peak = max(getattr(op, "peak_open_windows", 0) for t in result.tasks for op in t.operators)
    return elapsed, sink, peak


def run_baseline(events: int) -> tuple[float, dict[tuple[int, str], float]]:
    """The same aggregation in plain Python: window-major dicts, fired as the watermark passes."""
    started = time.perf_counter()
    windows: dict[int, dict[str, float]] = {}
    out: list[tuple[str, float]] = []
    out_ts: list[int] = []
    max_ts = -(1 << 62)
    for start in range(0, events, BATCH):
        indices = range(start, min(events, start + BATCH))
        stamps = list(map(STAMPS.__getitem__, indices))
        for (key, value), ts in zip(w2_records(indices), stamps, strict=True):
            end = ts - ts % WINDOW_MS + WINDOW_MS
            w = windows.get(end)
            if w is None:
                w = windows[end] = {}
            w[key] = w.get(key, 0.0) + value
        max_ts = max(max_ts, *stamps)
        watermark = max_ts - DISORDER_MS - 1
        for end in [e for e in windows if e - 1 <= watermark]:
            w = windows.pop(end)
            out.extend(w.items())
            out_ts.extend([end - 1] * len(w))
    for end, w in windows.items():
        out.extend(w.items())
        out_ts.extend([end - 1] * len(w))
    elapsed = time.perf_counter() - started
    return elapsed, {(ts, key): total for (key, total), ts in zip(out, out_ts, strict=True)}


def main() -> None:
    print(
        f"W2 tumbling event-time windows: {EVENTS:,} events, {NUM_KEYS:,} keys, "
        f"{WINDOW_MS} ms windows, disorder <= {DISORDER_MS} ms, parallelism 1"
    )
    print(f"load average before: {load()}")
    base_s, reference = run_baseline(EVENTS)
    job_s, sink, peak = run_job(EVENTS)
    got = {(ts, key): total for (key, total), ts in zip(sink.records, sink.timestamps, strict=True)}
    assert len(got) == len(sink.records), "a (window, key) result was emitted twice"
    assert got == reference, (
        f"results differ from the reference: {len(got)} vs {len(reference)} results"
    )
    job_rate, base_rate = EVENTS / job_s, EVENTS / base_s
    print(f"streamjob W2:          {job_rate:>12,.0f} events/s  ({job_s:.2f}s)")
    print(f"plain Python windows:  {base_rate:>12,.0f} events/s  ({base_s:.2f}s)")
    print(f"ratio job/baseline:    {job_rate / base_rate:.3f}")
    print(f"watermark interval:    {WATERMARK_INTERVAL_MS} ms (bounded out-of-orderness)")
    print(f"peak open windows:     {peak}")
    print(f"results:               {len(got):,} (window, key) sums, equal to the reference")
    print(f"load average after:    {load()}")
    print(
        json.dumps(
            {
                "bench": "w2",
                "events_per_s": round(job_rate),
                "baseline_events_per_s": round(base_rate),
                "ratio": round(job_rate / base_rate, 3),
                "parallelism": 1,
                "events": EVENTS,
                "keys": NUM_KEYS,
                "window_ms": WINDOW_MS,
                "watermark_interval_ms": WATERMARK_INTERVAL_MS,
                "peak_open_windows": peak,
                "results": len(got),
                "load": load(),
            }
        )
    )


if __name__ == "__main__":
    main()
