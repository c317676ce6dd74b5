"""The topic -> topic job of the Kafka exactly-once tests, and how to read its output.

``keyed_count_job`` is the checkpoint tests' keyed count (``tests.checkpoint.jobs``) between
two topics: a bounded :class:`KafkaSource` over an input topic holding ``str(i)`` for i <
events, ``(key_of(i), i)``, a throttle (so checkpoints happen mid-stream), an optional crash,
``key_by``, a count per key, and a :class:`KafkaSink` writing ``[key, n, subtask]`` as JSON.
Its correct output is every ``(key, n)`` for n = 1..count(key) exactly once
(``tests.checkpoint.jobs.expected_pairs``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from streamjob import StreamEnvironment
from streamjob.connectors.kafka import KafkaSink, KafkaSource
from streamjob.connectors.kafka.testing_broker import produce, read_topic
from streamjob.functions import MapFunction
from tests.checkpoint.jobs import CountPerKey, CrashOnce, Progress, key_of


def fill_input(bootstrap: str, topic: str, events: int, partitions: int) -> None:
    for p in range(partitions):
        produce(bootstrap, topic, [str(i) for i in range(p, events, partitions)], partition=p)


class Throttle(MapFunction):
    """About ``per_second`` records per second per subtask (a short sleep every 16)."""

    def __init__(self, per_second: float) -> None:
        self.pause = 16 / per_second
        self.seen = 0

    def map(self, value: Any) -> Any:
        self.seen += 1
        if self.seen % 16 == 0:
            time.sleep(self.pause)
        return value


def keyed_count_job(
    bootstrap: str,
    source_topic: str,
    sink: KafkaSink,
    *,
    rate: float = 4000,
    crash_at: int | None = None,
    progress: Progress | None = None,
) -> Any:
    def build(env: StreamEnvironment) -> None:
        source = KafkaSource(bootstrap, topics=source_topic, bounded=True, deserializer="str")
        (
            env.from_source(source, source_name="input")
            .uid("input")
            .map(lambda v: (key_of(int(v)), int(v)))
            .map(Throttle(rate))
            .map(CrashOnce(crash_at, progress))
            .uid("crash")
            .key_by(lambda r: r[0])
            .process(CountPerKey())
            .uid("count")
            .sink_to(sink)
            .uid("sink")
        )

    return build


def output_sink(bootstrap: str, topic: str, **options: Any) -> KafkaSink:
    return KafkaSink(
        bootstrap,
        topic=topic,
        key=lambda r: r[0],
        key_serializer="str",
        value_serializer="json",
        **options,
    )


def output_rows(bootstrap: str, topic: str) -> list[tuple[str, int, int]]:
    """``(key, n, subtask)`` of every committed output record."""
    rows = [json.loads(v or b"null") for _, _, _, v in read_topic(bootstrap, topic)]
    return [(str(k), int(n), int(s)) for k, n, s in rows]


def output_pairs(bootstrap: str, topic: str) -> Counter[tuple[str, int]]:
    return Counter((k, n) for k, n, _ in output_rows(bootstrap, topic))
