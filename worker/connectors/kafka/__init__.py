"""Kafka connectors (confluent-kafka): ``KafkaSource`` and ``KafkaSink``, exactly once.

Modules: :mod:`.source` (partitions as splits, positions in checkpoints), :mod:`.offsets`
(starting offsets), :mod:`.watermarks` (per-partition watermarks), :mod:`.serde`
(deserializers and serializers), :mod:`.sink` (delivery guarantees, transactions per
checkpoint), :mod:`.transactions` and :mod:`.protocol` (finishing a transaction after a
restore with a minimal wire-protocol client), :mod:`.admin` (topic metadata, clear errors),
:mod:`.testing_broker` (a noida-db broker for tests). confluent_kafka is imported only here.
"""

from streamjob.connectors.kafka.admin import KafkaConnectorError, create_topics
from streamjob.connectors.kafka.offsets import StartingOffsets
from streamjob.connectors.kafka.serde import KafkaRecord
from streamjob.connectors.kafka.sink import (
    DeliveryGuarantee,
    KafkaSink,
    TransactionTimeoutWarning,
)
from streamjob.connectors.kafka.source import KafkaSource

__all__ = [
    "DeliveryGuarantee",
    "KafkaConnectorError",
    "KafkaRecord",
    "KafkaSink",
    "KafkaSource",
    "StartingOffsets",
    "TransactionTimeoutWarning",
    "create_topics",
]
