"""Topic metadata and administration over confluent-kafka's AdminClient, with errors for people.

The source asks here which partitions its topics (or pattern) have when it cuts splits and when
it restores; tests, the example and the benchmark create topics here. An unreachable broker
and a missing topic fail with a message naming the servers, the topic and what to do. Topic
metadata is requested for *all* topics, never by name, so asking cannot auto-create a topic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewPartitions, NewTopic

from streamjob import errors

DEFAULT_TIMEOUT_S = 10.0


class KafkaConnectorError(errors.StreamJobError):
    """Kafka is unreachable, a topic is missing, or a broker refused a request."""


def client_config(bootstrap_servers: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    config.update(extra or {})
    return config


def _admin(bootstrap_servers: str, extra: Mapping[str, Any] | None) -> AdminClient:
    config = client_config(bootstrap_servers, extra)
    # only settings an admin client understands
    allowed = ("bootstrap.servers", "security.", "sasl.", "ssl.", "client.id", "socket.")
    return AdminClient({k: v for k, v in config.items() if k.startswith(allowed)})


def unreachable(bootstrap_servers: str, timeout_s: float, cause: object) -> KafkaConnectorError:
    return KafkaConnectorError(
        f"cannot reach Kafka at {bootstrap_servers!r} within {timeout_s:g} s ({cause}); check "
        "bootstrap.servers, that the brokers are up, and that this process can reach them "
        "(network policy, advertised.listeners)"
    )


def topic_partitions(
    bootstrap_servers: str,
    *,
    topics: list[str] | None = None,
    pattern: str | None = None,
    config: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, int]:
    """``{topic: partition count}`` for the named topics (each must exist) or those matching
    ``pattern`` (a regular expression matched against the whole name; may match none)."""
    try:
        metadata = _admin(bootstrap_servers, config).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise unreachable(bootstrap_servers, timeout_s, exc.args[0]) from exc
    available = {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if topic.error is None and not name.startswith("__")
    }
    if pattern is not None:
        regex = re.compile(pattern)
        return {name: n for name, n in sorted(available.items()) if regex.fullmatch(name)}
    found: dict[str, int] = {}
    for name in topics or []:
        if name not in available:
            listed = ", ".join(sorted(available)[:10]) or "none"
            raise KafkaConnectorError(
                f"Kafka topic {name!r} does not exist on {bootstrap_servers!r} (its topics: "
                f"{listed}); create it (kafka-topics.sh --create --topic {name} ...) or fix "
                "the name"
            )
        found[name] = available[name]
    return found


def create_topics(
    bootstrap_servers: str,
    partitions: Mapping[str, int],
    *,
    config: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Create topics (replication factor 1); existing ones are left alone."""
    admin = _admin(bootstrap_servers, config)
    futures = admin.create_topics(
        [NewTopic(name, count, 1) for name, count in partitions.items()],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if isinstance(error, KafkaError) and error.code() == KafkaError._TRANSPORT:
                raise unreachable(bootstrap_servers, timeout_s, error) from exc
            raise KafkaConnectorError(f"could not create Kafka topic {name!r}: {error}") from exc


def add_partitions(
    bootstrap_servers: str,
    topic: str,
    total: int,
    *,
    config: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Grow ``topic`` to ``total`` partitions."""
    client = _admin(bootstrap_servers, config)  # kept alive until the futures resolve
    futures = client.create_partitions(
        [NewPartitions(topic, total)], operation_timeout=timeout_s, request_timeout=timeout_s
    )
    for future in futures.values():
        try:
            future.result()
        except KafkaException as exc:
            raise KafkaConnectorError(
                f"could not grow Kafka topic {topic!r} to {total} partitions: {exc.args[0]}"
            ) from exc
