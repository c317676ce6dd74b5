"""Where a Kafka source starts (``StartingOffsets``) and, bounded, where it stops.

Flink's ``OffsetsInitializer`` in small: earliest, latest, the consumer group's committed
offsets (with a fallback when none is committed), the first offset at or after a timestamp,
or specific offsets per partition. They are resolved to concrete offsets when a reader is
assigned its partitions on a fresh start, so the first checkpoint already holds numbers; a
restore ignores them and continues from the checkpoint. Partitions that appear on a restore
start at the earliest offset (as in Flink).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streamjob import errors
from streamjob.connectors.kafka import admin

TopicPartitionKey = tuple[str, int]

#: librdkafka's logical offset for the start of a partition (``OFFSET_BEGINNING``)
BEGINNING = -2

_KINDS = ("earliest", "latest", "committed", "timestamp", "specific")


@dataclasses.dataclass(frozen=True)
class StartingOffsets:
    """Build with the static constructors."""

    kind: str
    timestamp_ms: int | None = None
    offsets: Mapping[TopicPartitionKey, int] | None = None
    #: for ``committed`` without a committed offset and ``specific`` without an entry
    fallback: str = "earliest"

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise errors.JobDefinitionError(
                f"unknown starting offsets {self.kind!r}; use StartingOffsets.earliest(), "
                ".latest(), .committed(), .timestamp(ms) or .specific({(topic, p): offset})"
            )
        if self.fallback not in ("earliest", "latest"):
            raise errors.JobDefinitionError(
                f"the fallback of starting offsets is 'earliest' or 'latest', got {self.fallback!r}"
            )

    @staticmethod
    def earliest() -> StartingOffsets:
        return StartingOffsets("earliest")

    @staticmethod
    def latest() -> StartingOffsets:
        return StartingOffsets("latest")

    @staticmethod
    def committed(fallback: str = "earliest") -> StartingOffsets:
        """The group's committed offsets (needs ``group_id``); ``fallback`` where none is."""
        return StartingOffsets("committed", fallback=fallback)

    @staticmethod
    def timestamp(timestamp_ms: int) -> StartingOffsets:
        """The first record whose timestamp is >= ``timestamp_ms`` (the end if none is)."""
        if timestamp_ms < 0:
            raise errors.JobDefinitionError(
                f"a starting timestamp must be >= 0, got {timestamp_ms}"
            )
        return StartingOffsets("timestamp", timestamp_ms=timestamp_ms)

    @staticmethod
    def specific(
        offsets: Mapping[TopicPartitionKey, int], fallback: str = "earliest"
    ) -> StartingOffsets:
        return StartingOffsets("specific", offsets=dict(offsets), fallback=fallback)


def watermarks(
    consumer: Consumer, partitions: list[TopicPartitionKey], timeout_s: float, servers: str
) -> dict[TopicPartitionKey, tuple[int, int]]:
    """``(low, high)`` per partition; ``high`` is the last stable offset under read_committed."""
    out = {}
    for topic, partition in partitions:
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s, cached=False
            )
        except KafkaException as exc:
            raise admin.unreachable(servers, timeout_s, exc.args[0]) from exc
        out[(topic, partition)] = (int(low), int(high))
    return out


def resolve(
    spec: StartingOffsets,
    consumer: Consumer,
    partitions: list[TopicPartitionKey],
    *,
    timeout_s: float,
    servers: str,
) -> dict[TopicPartitionKey, int]:
    """Concrete start offsets for ``partitions``."""
    if not partitions:
        return {}
    bounds = watermarks(consumer, partitions, timeout_s, servers)
    if spec.kind == "earliest":
        return {tp: bounds[tp][0] for tp in partitions}

    def fallback(tp: TopicPartitionKey) -> int:
        return bounds[tp][0] if spec.fallback == "earliest" else bounds[tp][1]

    if spec.kind == "latest":
        return {tp: bounds[tp][1] for tp in partitions}
    if spec.kind == "specific":
        given = spec.offsets or {}
        return {tp: given[tp] if tp in given else fallback(tp) for tp in partitions}
    try:
        if spec.kind == "committed":
            found = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout_s)
            return {
                (tp.topic, tp.partition): tp.offset
                if tp.offset >= 0
                else fallback((tp.topic, tp.partition))
                for tp in found
            }
        assert spec.timestamp_ms is not None
        query = [TopicPartition(t, p, spec.timestamp_ms) for t, p in partitions]
        found = consumer.offsets_for_times(query, timeout_s)
    except KafkaException as exc:
        raise admin.KafkaConnectorError(
            f"could not resolve {spec.kind} starting offsets for {partitions[:5]}: {exc.args[0]}"
        ) from exc
    return {
        (tp.topic, tp.partition): tp.offset
        if tp.offset >= 0
        else bounds[(tp.topic, tp.partition)][1]
        for tp in found
    }
