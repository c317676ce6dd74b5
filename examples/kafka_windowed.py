"""Kafka in, windows, Kafka out: clicks per page in 10-second event-time windows, exactly once.

Reads JSON clicks ``{"page": ..., "user": ..., "ts": epoch ms}`` from the topic ``clicks``,
with per-partition watermarks (2 s of disorder; a partition idle for 5 s stops holding the
watermark back), counts clicks per page in tumbling 10-second windows and writes
``{"page", "start", "end", "clicks"}`` to the topic ``page-counts`` through an exactly-once
KafkaSink (a transaction per checkpoint; read it with ``isolation.level=read_committed``).

Against your own Kafka (topics ``clicks`` and ``page-counts`` must exist)::

    streamjob run examples/kafka_windowed.py --parallelism 2 --checkpoint-dir /tmp/chk \\
        --checkpoint-interval 5 -- --bootstrap kafka:9092

``python examples/kafka_windowed.py`` instead starts a throw-away noida-db broker on loopback
(``pip install noida-db``), fills ``clicks`` with 6,000 clicks over 3 partitions, runs the job
bounded with checkpoints every 200 ms, and prints what ``page-counts`` holds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

from streamjob import Duration, StreamEnvironment, WatermarkStrategy
from streamjob.connectors.kafka import DeliveryGuarantee, KafkaSink, KafkaSource
from streamjob.windows import AggregateFunction, ProcessWindowFunction, TumblingEventTimeWindows

PAGES = [f"/page/{n}" for n in range(10)]


class CountClicks(AggregateFunction):
    def create_accumulator(self) -> int:
        return 0

    def add(self, value: Any, accumulator: int) -> int:
        return accumulator + 1

    def get_result(self, accumulator: int) -> int:
        return accumulator

    def merge(self, a: int, b: int) -> int:
        return a + b


class WithWindow(ProcessWindowFunction):
    def process(self, key: Any, context: Any, elements: Any) -> Any:
        (clicks,) = elements
        window = context.window()
        yield {"page": key, "start": window.start, "end": window.end, "clicks": clicks}


def pipeline(env: StreamEnvironment, bootstrap: str, *, bounded: bool = False) -> None:
    source = KafkaSource(
        bootstrap, topics="clicks", deserializer="json", bounded=bounded, group_id="page-counts"
    )
    strategy = source.per_partition(
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_seconds(2))
        .with_timestamp_assigner(lambda click, _: click["ts"])
        .with_idleness(Duration.of_seconds(5))
    )
    counts = (
        env.from_source(source, strategy, "clicks")
        .uid("clicks")
        .key_by(lambda click: click["page"])
        .window(TumblingEventTimeWindows.of(Duration.of_seconds(10)))
        .aggregate(CountClicks(), WithWindow())
        .uid("page-counts")
    )
    sink = KafkaSink(
        bootstrap,
        topic="page-counts",
        key=lambda row: row["page"],
        key_serializer="str",
        value_serializer="json",
        delivery_guarantee=DeliveryGuarantee.EXACTLY_ONCE,
        transactional_id_prefix="page-counts",
        transaction_timeout_ms=10 * 60 * 1000,
    )
    counts.sink_to(sink).uid("page-counts-sink")


def build(env: StreamEnvironment) -> None:
    parser = argparse.ArgumentParser(prog="kafka_windowed")
    parser.add_argument("--bootstrap", default="localhost:9092")
    args = parser.parse_args(env.config.job_config.get("args", []))
    pipeline(env, args.bootstrap)


def click(i: int) -> dict[str, Any]:
    """Click ``i``: 100 ms of event time apart, up to 1.5 s out of order."""
    return {
        "page": PAGES[(i * 31) % len(PAGES)],
        "user": f"user-{(i * 13) % 40}",
        "ts": 1_000_000 + i * 100 - (i * 7919) % 1500,
    }


def demo() -> None:
    from streamjob.connectors.kafka import create_topics
    from streamjob.connectors.kafka.testing_broker import NoidaKafkaBroker, produce, read_topic

    with NoidaKafkaBroker() as broker, tempfile.TemporaryDirectory() as checkpoints:
        servers = broker.bootstrap_servers
        create_topics(servers, {"clicks": 3, "page-counts": 2})
        for p in range(3):
            clicks = [click(i) for i in range(p, 6000, 3)]
            produce(
                servers,
                "clicks",
                [json.dumps(c) for c in clicks],
                partition=p,
                timestamps=[c["ts"] for c in clicks],
            )
        env = StreamEnvironment(parallelism=2)
        env.enable_checkpointing(200, directory=checkpoints)
        pipeline(env, servers, bounded=True)
        env.execute("kafka-windowed")
        rows = [json.loads(v or b"{}") for *_, v in read_topic(servers, "page-counts")]
        for row in sorted(rows, key=lambda r: (r["start"], r["page"]))[:12]:
            print(row)
        print(f"... {len(rows)} windows, {sum(r['clicks'] for r in rows)} clicks in all")


if __name__ == "__main__":
    demo()
