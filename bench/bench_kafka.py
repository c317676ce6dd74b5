"""Kafka topic -> topic throughput, exactly-once on and off, on one noida-db broker on loopback.

Fills an input topic (4 partitions) with EVENTS small records, then runs, for each delivery
guarantee, a job reading it with a bounded KafkaSource and writing every record to a fresh
output topic through KafkaSink, checkpointing every second, parallelism 1. Prints events per
second end to end (job start to the last commit), the rate of a plain confluent-kafka consume
-> produce loop over the same topic (the baseline), and the load average, then one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from streamjob import StreamEnvironment
from streamjob.connectors.kafka import DeliveryGuarantee, KafkaSink, KafkaSource, admin
from streamjob.connectors.kafka.testing_broker import NoidaKafkaBroker, produce, read_topic

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
PARTITIONS = 4


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def run_job(servers: str, source: str, guarantee: DeliveryGuarantee) -> float:
    out = f"out-{uuid.uuid4().hex[:8]}"
    admin.create_topics(servers, {out: PARTITIONS})
    env = StreamEnvironment(parallelism=1)
    with tempfile.TemporaryDirectory() as checkpoints:
        env.enable_checkpointing(1000, directory=checkpoints)
        (
            env.from_source(KafkaSource(servers, topics=source, bounded=True))
            .uid("in")
            .sink_to(
                KafkaSink(
                    servers,
                    topic=out,
                    delivery_guarantee=guarantee,
                    transactional_id_prefix=f"bench-{uuid.uuid4().hex[:8]}",
                )
            )
            .uid("out")
        )
        started = time.perf_counter()
        env.execute("kafka-bench")
        elapsed = time.perf_counter() - started
    written = len(read_topic(servers, out))
    if written != EVENTS:
        raise SystemExit(f"{guarantee.value}: wrote {written} records, expected {EVENTS}")
    return elapsed


def run_baseline(servers: str, source: str) -> float:
    """consume() -> produce() in a loop, then flush: no engine, no checkpoints."""
    out = f"base-{uuid.uuid4().hex[:8]}"
    admin.create_topics(servers, {out: PARTITIONS})
    started = time.perf_counter()
    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": "bench", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(source, p, 0) for p in range(PARTITIONS)])
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    seen = 0
    while seen < EVENTS:
        for message in consumer.consume(1000, 0.1):
            if message.error() is None:
                producer.produce(out, message.value())
                seen += 1
        producer.poll(0)
    producer.flush(60)
    consumer.close()
    return time.perf_counter() - started


def main() -> None:
    print(f"Kafka topic -> topic: {EVENTS:,} events of ~8 bytes, {PARTITIONS} partitions, p = 1")
    print(f"load average before: {load()}")
    with NoidaKafkaBroker() as broker:
        servers = broker.bootstrap_servers
        source = broker.create_topic("bench-in", PARTITIONS)
        for p in range(PARTITIONS):
            produce(
                servers, source, [f"e{i:07d}" for i in range(p, EVENTS, PARTITIONS)], partition=p
            )
        figures = {}
        for guarantee in (DeliveryGuarantee.AT_LEAST_ONCE, DeliveryGuarantee.EXACTLY_ONCE):
            seconds = run_job(servers, source, guarantee)
            figures[guarantee.value] = EVENTS / seconds
            print(f"{guarantee.value:>14}: {EVENTS / seconds:>10,.0f} events/s ({seconds:.2f} s)")
        baseline = EVENTS / run_baseline(servers, source)
        print(f"{'baseline loop':>14}: {baseline:>10,.0f} events/s")
    print(f"load average after: {load()}")
    print(
        json.dumps(
            {
                "bench": "kafka",
                "events": EVENTS,
                "at_least_once_events_per_s": round(figures["at-least-once"]),
                "exactly_once_events_per_s": round(figures["exactly-once"]),
                "baseline_events_per_s": round(baseline),
                "load": load(),
            }
        )
    )


if __name__ == "__main__":
    main()
