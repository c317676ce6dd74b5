"""KafkaSink's delivery guarantees and bad input, against a real Kafka-protocol broker.

* ``NONE`` and ``AT_LEAST_ONCE`` deliver every record, with keys and serializers, and a topic
  chosen per record; ``EXACTLY_ONCE`` without checkpointing commits at the end of input;
* exactly-once needs a transactional-id prefix and a plaintext listener (clear errors);
* a transaction timeout not longer than the checkpoint interval warns when the job is built;
* a missing topic and an unreachable broker fail the writer's start with messages that say so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

from streamjob import StreamEnvironment, errors
from streamjob.connectors.kafka import (
    DeliveryGuarantee,
    KafkaConnectorError,
    KafkaSink,
    TransactionTimeoutWarning,
)
from streamjob.connectors.kafka.testing_broker import read_topic
from streamjob.connectors.sink import SinkContext
from streamjob.testing import run_local
from tests.connectors.kafka.conftest import unique


@pytest.mark.parametrize("guarantee", [DeliveryGuarantee.NONE, DeliveryGuarantee.AT_LEAST_ONCE])
def test_records_keys_and_serializers(
    bootstrap: str, topic: Callable[..., str], guarantee: DeliveryGuarantee
) -> None:
    name = topic(3)
    sink = KafkaSink(
        bootstrap,
        topic=name,
        value_serializer="json",
        key=lambda r: r["id"],
        key_serializer="str",
        delivery_guarantee=guarantee,
    )
    records = [{"id": i, "v": "x" * (i % 5)} for i in range(500)]
    run_local(lambda env: env.from_collection(records).sink_to(sink), parallelism=2)
    got = read_topic(bootstrap, name)
    assert len(got) == 500
    assert sorted(int(k or b"") for _, _, k, _ in got) == list(range(500))
    assert {v for _, _, _, v in got} >= {b'{"id":0,"v":""}', b'{"id":499,"v":"xxxx"}'}
    by_key: dict[bytes | None, set[int]] = {}
    for partition, _, key, _ in got:
        by_key.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_key.values())


def test_a_topic_per_record(bootstrap: str, topic: Callable[..., str]) -> None:
    even, odd = topic(), topic()
    sink = KafkaSink(
        bootstrap, topic_selector=lambda n: even if n % 2 == 0 else odd, value_serializer="str"
    )
    run_local(lambda env: env.from_collection(list(range(10))).sink_to(sink))
    assert [v for *_, v in read_topic(bootstrap, even)] == [b"0", b"2", b"4", b"6", b"8"]
    assert [v for *_, v in read_topic(bootstrap, odd)] == [b"1", b"3", b"5", b"7", b"9"]


def test_exactly_once_without_checkpoints_commits_at_the_end(
    bootstrap: str, topic: Callable[..., str]
) -> None:
    name = topic()
    sink = KafkaSink(
        bootstrap,
        topic=name,
        delivery_guarantee=DeliveryGuarantee.EXACTLY_ONCE,
        transactional_id_prefix=unique("eos"),
        value_serializer="str",
    )
    run_local(lambda env: env.from_collection(list(range(100))).sink_to(sink))
    assert [int(v or b"") for *_, v in read_topic(bootstrap, name)] == list(range(100))


def test_exactly_once_needs_a_prefix_and_plaintext() -> None:
    with pytest.raises(errors.JobDefinitionError, match="transactional_id_prefix"):
        KafkaSink("b:9092", topic="t", delivery_guarantee=DeliveryGuarantee.EXACTLY_ONCE)
    with pytest.raises(errors.JobDefinitionError, match=r"security\.protocol=sasl_ssl"):
        KafkaSink(
            "b:9092",
            topic="t",
            delivery_guarantee=DeliveryGuarantee.EXACTLY_ONCE,
            transactional_id_prefix="p",
            properties={"security.protocol": "SASL_SSL"},
        )
    with pytest.raises(errors.JobDefinitionError, match="topic"):
        KafkaSink("b:9092")


def _build(sink: KafkaSink, interval_ms: int) -> None:
    """What ``streamjob run --checkpoint-interval`` does: the interval is set on the built
    job's environment, then the runner is created (and checks the connectors)."""
    env = StreamEnvironment()
    env.from_collection([1]).sink_to(sink)
    env.enable_checkpointing(interval_ms, directory="/tmp/unused")
    env.create_runner()


def test_a_transaction_timeout_below_the_checkpoint_interval_warns() -> None:
    def sink(timeout_ms: int) -> KafkaSink:
        return KafkaSink(
            "b:9092",
            topic="t",
            delivery_guarantee=DeliveryGuarantee.EXACTLY_ONCE,
            transactional_id_prefix="p",
            transaction_timeout_ms=timeout_ms,
        )

    with pytest.warns(TransactionTimeoutWarning, match=r"transaction_timeout_ms=30000.*60000 ms"):
        _build(sink(30_000), 60_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _build(sink(600_000), 60_000)


def _writer(sink: KafkaSink) -> Any:
    return sink.create_writer(SinkContext(0, 1))


def test_a_missing_topic_is_named(bootstrap: str) -> None:
    with pytest.raises(KafkaConnectorError, match=r"topic 'nowhere' does not exist"):
        _writer(KafkaSink(bootstrap, topic="nowhere"))


def test_an_unreachable_broker_is_named() -> None:
    with pytest.raises(KafkaConnectorError, match=r"cannot reach Kafka at '127.0.0.1:1'"):
        _writer(KafkaSink("127.0.0.1:1", topic="t", timeout_s=1))
