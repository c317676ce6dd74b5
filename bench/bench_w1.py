"""W1: keyed running count, 2,000,000 events over 100,000 Zipf-skewed keys, parallelism 1.

Prints events per second of the job, of a plain Python loop doing the same counting in a dict
over the same generator (the baseline), their ratio, the source-only rate, and the load
average (the machines are shared), then one JSON line with the figures.
"""

from __future__ import annotations

import json
import sys
import time

from workloads import CountPerKey, load, w1_records, w1_source

from streamjob import CountingSink, StreamEnvironment
from streamjob.connectors.basic_sinks import DiscardingSink

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
BATCH = 1024


def run_job(events: int) -> tuple[float, int]:
    env = StreamEnvironment(parallelism=1)
    sink = CountingSink()
    (
        env.from_source(w1_source(events), source_name="generator")
        .key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(sink)
    )
    started = time.perf_counter()
    env.execute("w1")
    return time.perf_counter() - started, sink.count


def run_source_only(events: int) -> float:
    env = StreamEnvironment(parallelism=1)
    env.from_source(w1_source(events)).sink_to(DiscardingSink())
    started = time.perf_counter()
    env.execute("w1-source")
    return time.perf_counter() - started


def run_baseline(events: int) -> float:
    started = time.perf_counter()
    counts: dict[str, int] = {}
    emitted = 0
    for start in range(0, events, BATCH):
        for key, _ in w1_records(range(start, min(events, start + BATCH))):
            n = counts.get(key, 0) + 1
            counts[key] = n
            emitted += 1
    return time.perf_counter() - started


def main() -> None:
    print(f"W1 keyed running count: {EVENTS:,} events, 100,000 keys (Zipf), parallelism 1")
    print(f"load average before: {load()}")
    base_s = run_baseline(EVENTS)
    src_s = run_source_only(EVENTS)
    job_s, out = run_job(EVENTS)
    assert out == EVENTS, f"sink saw {out} records, expected {EVENTS}"
    job_rate, base_rate, src_rate = EVENTS / job_s, EVENTS / base_s, EVENTS / src_s
    print(f"streamjob W1:        {job_rate:>12,.0f} events/s  ({job_s:.2f}s)")
    print(f"plain Python dict:   {base_rate:>12,.0f} events/s  ({base_s:.2f}s)")
    print(f"ratio job/baseline:  {job_rate / base_rate:.3f}")
    print(f"source only:         {src_rate:>12,.0f} events/s")
    print(f"load average after:  {load()}")
    print(
        json.dumps(
            {
                "bench": "w1",
                "events_per_s": round(job_rate),
                "baseline_events_per_s": round(base_rate),
                "ratio": round(job_rate / base_rate, 3),
                "source_events_per_s": round(src_rate),
                "parallelism": 1,
                "events": EVENTS,
                "load": load(),
            }
        )
    )


if __name__ == "__main__":
    main()
