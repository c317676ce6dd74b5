"""The Kafka exactly-once job for the multi-process test; its processes import this file
by path (without the repository on ``sys.path``), so it imports nothing from ``tests``.

Settings come from environment variables: ``STREAMJOB_TEST_KAFKA`` (bootstrap servers),
``STREAMJOB_TEST_IN`` / ``STREAMJOB_TEST_OUT`` (topics), ``STREAMJOB_TEST_PREFIX`` (the
transactional-id prefix), ``STREAMJOB_TEST_RATE`` (the source's records per second). The job
is ``tests.connectors.kafka.jobs.keyed_count_job`` (same keys, same output rows).
"""

from __future__ import annotations

import os
from typing import Any

from streamjob import StreamEnvironment
from streamjob.connectors.kafka import DeliveryGuarantee, KafkaSink, KafkaSource
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import ValueStateDescriptor


def key_of(i: int) -> str:
    return f"k{(i * 7919) % 37}"


class CountPerKey(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))
        self.subtask = runtime_context.get_index_of_this_subtask()

    def process_element(self, value: Any, ctx: Any) -> Any:
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        return ((value[0], n, self.subtask),)


def build(env: StreamEnvironment) -> None:
    servers = os.environ["STREAMJOB_TEST_KAFKA"]
    sink = KafkaSink(
        servers,
        topic=os.environ["STREAMJOB_TEST_OUT"],
        key=lambda r: r[0],
        key_serializer="str",
        value_serializer="json",
        delivery_guarantee=DeliveryGuarantee.EXACTLY_ONCE,
        transactional_id_prefix=os.environ["STREAMJOB_TEST_PREFIX"],
    )
    source = KafkaSource(
        servers,
        topics=os.environ["STREAMJOB_TEST_IN"],
        bounded=True,
        deserializer="str",
        rate_per_second=float(os.environ["STREAMJOB_TEST_RATE"]),
    )
    (
        env.from_source(source, source_name="input")
        .uid("input")
        .map(lambda v: (key_of(int(v)), int(v)))
        .key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(sink)
        .uid("sink")
    )
