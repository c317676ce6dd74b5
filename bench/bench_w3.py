"""W3: W1 (a keyed running count over 100,000 Zipf keys, parallelism 1) checkpointing every second.

Runs W1 without checkpoints and W3 (the same job checkpointing every 1,000 ms to a local temp
directory) alternately, ``ROUNDS`` times each, in one process, and reports the best rate of each
and their ratio (target: W3 >= 0.9 x W1). Also reports the checkpoints the best W3 run completed
(including the final one a bounded job takes after its input ends, FLIP-147) and, over the
checkpoints of all W3 runs, their end-to-end duration (trigger to ``_metadata`` committed:
median and max), the synchronous part of the keyed task's snapshot (barrier in to barrier out:
what holds the barrier, median and max), its whole snapshot (barrier in to the last key group
serialized, copy-on-write, between batches), and their sizes.

The default run is 10,000,000 events (about 6 s at W1's rate), so W3 takes several interval
checkpoints; W1's own bench uses 2,000,000, which would leave W3 one interval checkpoint.
Usage: ``python bench/bench_w3.py [events]``. Ends with one JSON line ``{"bench": "w3", ...}``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from typing import Any

from workloads import CountPerKey, load, w1_source

from streamjob import CountingSink, StreamEnvironment
from streamjob.checkpoint import snapshotting

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
INTERVAL_MS = 1_000
ROUNDS = 3


def build(events: int) -> tuple[StreamEnvironment, CountingSink]:
    env = StreamEnvironment(parallelism=1)
    sink = CountingSink()
    (
        env.from_source(w1_source(events), source_name="generator")
        .key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(sink)
    )
    return env, sink


def run_w1(events: int) -> float:
    env, sink = build(events)
    started = time.perf_counter()
    env.execute("w1")
    elapsed = time.perf_counter() - started
    assert sink.count == events, f"sink saw {sink.count} records, expected {events}"
    return events / elapsed


Timing = tuple[float, float]
"""(synchronous part, whole snapshot) of one checkpoint in ms: the slowest task's."""


class Timings:
    """Records each task's snapshot timing from its acknowledgements (instrumentation only)."""

    def __init__(self) -> None:
        self.by_checkpoint: dict[int, Timing] = {}
        self._init = snapshotting.TaskCheckpointer.__init__

    def __enter__(self) -> Timings:
        init, found = self._init, self.by_checkpoint

        def checkpointer(checkpointer: Any, task: Any, **kwargs: Any) -> None:
            acknowledge = kwargs["acknowledge"]

            def acked(checkpoint_id: int, key: Any, snapshot: Any) -> None:
                sync, whole = found.get(checkpoint_id, (0.0, 0.0))
                found[checkpoint_id] = (
                    max(sync, snapshot.sync_ms),
                    max(whole, snapshot.snapshot_ms),
                )
                acknowledge(checkpoint_id, key, snapshot)

            kwargs["acknowledge"] = acked
            init(checkpointer, task, **kwargs)

        snapshotting.TaskCheckpointer.__init__ = checkpointer  # type: ignore[method-assign]
        return self

    def __exit__(self, *_exc: object) -> None:
        snapshotting.TaskCheckpointer.__init__ = self._init  # type: ignore[method-assign]


def run_w3(events: int, directory: str) -> tuple[float, list[Any], list[Timing]]:
    """Rate, the completed checkpoints, and the timing of each."""
    env, sink = build(events)
    env.configure_checkpoints(directory=directory, interval_ms=INTERVAL_MS)
    with Timings() as timings:
        runner = env.create_runner()
        started = time.perf_counter()
        result = asyncio.run(runner.run())
        elapsed = time.perf_counter() - started
    assert sink.count == events, f"sink saw {sink.count} records, expected {events}"
    checkpoints = list(result.checkpoints)
    return (
        events / elapsed,
        checkpoints,
        [timings.by_checkpoint[c.checkpoint_id] for c in checkpoints],
    )


def main() -> None:
    print(f"W3 = W1 + checkpoint every {INTERVAL_MS} ms: {EVENTS:,} events, 100,000 keys (Zipf)")
    print(f"load average before: {load()}")
    w1_rates: list[float] = []
    w3_runs: list[tuple[float, list[Any], list[Timing]]] = []
    for round_ in range(ROUNDS):
        w1_rates.append(run_w1(EVENTS))
        with tempfile.TemporaryDirectory(prefix="bench-w3-") as directory:
            w3_runs.append(run_w3(EVENTS, directory))
        rate, checkpoints, timing = w3_runs[-1]
        print(
            f"round {round_ + 1}: W1 {w1_rates[-1]:>12,.0f} events/s   W3 {rate:>12,.0f} events/s"
            f"   ratio {rate / w1_rates[-1]:.3f}   checkpoints {len(checkpoints)}"
        )
        print(f"  durations ms {[c.duration_ms for c in checkpoints]}")
        print(f"  sync ms      {[round(s, 1) for s, _ in timing]}")
        print(f"  snapshot ms  {[round(w, 1) for _, w in timing]}")
    w1_rate = max(w1_rates)
    w3_rate, checkpoints, _ = max(w3_runs, key=lambda run: run[0])
    every = [c for _, run, _ in w3_runs for c in run]  # checkpoint figures: all rounds
    durations = [c.duration_ms for c in every] or [0]
    sizes = [c.size_bytes for c in every] or [0]
    sync = [ms for _, _, run in w3_runs for ms, _ in run] or [0.0]
    whole = [ms for _, _, run in w3_runs for _, ms in run] or [0.0]
    ratio = w3_rate / w1_rate
    print(f"W1 (best of {ROUNDS}):          {w1_rate:>12,.0f} events/s")
    print(f"W3 (best of {ROUNDS}):          {w3_rate:>12,.0f} events/s")
    print(f"ratio W3/W1:             {ratio:.3f}  (target >= 0.9)")
    print(f"checkpoints completed:   {len(checkpoints)} (the last one after end of input)")
    print(f"checkpoint figures over all {len(every)} checkpoints of the {ROUNDS} W3 runs:")
    print(
        f"checkpoint duration:     median {statistics.median(durations):.0f} ms, "
        f"max {max(durations)} ms (trigger to _metadata; the upload's fsync dominates)"
    )
    print(
        f"synchronous part:        median {statistics.median(sync):.2f} ms, "
        f"max {max(sync):.2f} ms (barrier in to barrier out, on the task loop)"
    )
    print(
        f"whole snapshot:          median {statistics.median(whole):.1f} ms, "
        f"max {max(whole):.1f} ms (barrier in to the last key group serialized)"
    )
    print(f"checkpoint size:         median {statistics.median(sizes):,.0f} bytes")
    print(f"load average after:      {load()}")
    print(
        json.dumps(
            {
                "bench": "w3",
                "events_per_s": round(w3_rate),
                "w1_events_per_s": round(w1_rate),
                "ratio": round(ratio, 3),
                "checkpoints": len(checkpoints),
                "checkpoints_all_runs": len(every),
                "checkpoint_ms_median": statistics.median(durations),
                "checkpoint_ms_max": max(durations),
                "sync_ms_median": round(statistics.median(sync), 2),
                "sync_ms_max": round(max(sync), 2),
                "snapshot_ms_median": round(statistics.median(whole), 1),
                "snapshot_ms_max": round(max(whole), 1),
                "checkpoint_bytes_median": statistics.median(sizes),
                "interval_ms": INTERVAL_MS,
                "events": EVENTS,
                "rounds": ROUNDS,
                "parallelism": 1,
                "load": load(),
            }
        )
    )


if __name__ == "__main__":
    main()
