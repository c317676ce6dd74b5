"""The Kafka-protocol broker of the Kafka connector tests: one noida-db per session, on loopback.

``kafka_broker`` starts :class:`NoidaKafkaBroker` on 127.0.0.1 on a free port with its own
data directory, and stops it and deletes the directory at the end of the session; tests keep
apart by topic names (``topic`` makes a fresh one) and transactional-id prefixes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from streamjob.connectors.kafka.testing_broker import NoidaKafkaBroker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[NoidaKafkaBroker]:
    broker = NoidaKafkaBroker().start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def bootstrap(kafka_broker: NoidaKafkaBroker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def topic(kafka_broker: NoidaKafkaBroker) -> Callable[..., str]:
    """``topic(partitions=1)``: a new, empty topic with a unique name."""

    def make(partitions: int = 1, prefix: str = "t") -> str:
        return kafka_broker.create_topic(f"{prefix}-{uuid.uuid4().hex[:10]}", partitions)

    return make


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
