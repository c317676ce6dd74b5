"""Jobs for the distributed benchmark (imported by every JobManager/TaskManager process).

``w1``: W1 (keyed running count in ValueState over 100,000 Zipf keys) into a counting sink;
``BENCH_EVENTS`` and ``BENCH_RATE`` (0 = unlimited) come from the environment.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import CountPerKey, w1_records

from streamjob import GeneratorSource, StreamEnvironment
from streamjob.connectors.basic_sinks import DiscardingSink


def w1(env: StreamEnvironment) -> None:
    events = int(os.environ.get("BENCH_EVENTS", "2000000"))
    rate = float(os.environ.get("BENCH_RATE", "0")) or None
    source = GeneratorSource(batch_fn=w1_records, count=events, rate_per_second=rate)
    (
        env.from_source(source, source_name="generator")
        .uid("generator")
        .key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(DiscardingSink())
        .uid("sink")
    )
