"""A Kafka-protocol broker for tests, examples and benchmarks: noida-db on loopback.

``noida-db`` (PyPI, the ``test`` extra) ships one binary that speaks Kafka's protocol,
including transactions, ``read_committed`` and producer fencing (``tests/connectors/kafka``
checks each). :class:`NoidaKafkaBroker` starts it on ``127.0.0.1`` on a free port with a
private data directory, waits until it answers ``ApiVersions``, and ``stop()`` ends it and
deletes the directory. Plus two helpers every Kafka test needs: :func:`produce` and
:func:`read_topic` (everything up to the end, as a given isolation level sees it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from streamjob.connectors.kafka import admin, protocol


def noida_binary() -> Path:
    spec = importlib.util.find_spec("noida_db")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "noida-db is not installed: pip install noida-db (it is in streamjob's test extra)"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "noida-db"
    if not binary.is_file():
        raise FileNotFoundError(f"noida-db's binary is missing at {binary}; reinstall noida-db")
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NoidaKafkaBroker:
    """``with NoidaKafkaBroker() as broker: broker.bootstrap_servers``."""

    def __init__(self, *, port: int | None = None, data_dir: str | None = None) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="noida-kafka-")
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = Path(self.data_dir) / "broker.log"

    def start(self, timeout_s: float = 20.0) -> NoidaKafkaBroker:
        log = self._log.open("wb")
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                str(noida_binary()),
                "start",
                "--data-dir",
                self.data_dir,
                "--host",
                "127.0.0.1",
                "--only",
                "kafka",
                "--kafka-port",
                str(self.port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"noida-db exited with {self._process.returncode} at start: "
                    f"{self._log.read_text(errors='replace')[-2000:]}"
                )
            try:
                with protocol.Connection("127.0.0.1", self.port, client_id="probe") as conn:
                    conn.api_versions()
                return self
            except (protocol.KafkaProtocolError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"noida-db did not answer on {self.bootstrap_servers} within "
                        f"{timeout_s:g} s"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> NoidaKafkaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def create_topic(self, name: str, partitions: int = 1) -> str:
        admin.create_topics(self.bootstrap_servers, {name: partitions})
        return name


def produce(
    bootstrap_servers: str,
    topic: str,
    values: Iterable[bytes | str],
    *,
    key: Any = None,
    partition: int | None = None,
    timestamps: Iterable[int] | None = None,
) -> int:
    """Send ``values``, wait for every acknowledgement and until a ``read_committed`` reader's
    end offsets show them (the broker may publish its end offsets a moment after the
    acknowledgement); returns how many."""
    before = _visible_end(bootstrap_servers, topic)
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5})
    count = 0
    stamps = iter(timestamps) if timestamps is not None else None
    extra: dict[str, Any] = {} if partition is None else {"partition": partition}
    for value in values:
        if stamps is not None:
            extra["timestamp"] = next(stamps)
        while True:
            try:
                producer.produce(topic, value, key, **extra)
                break
            except BufferError:
                producer.flush(10)
        count += 1
    remaining = producer.flush(30)
    if remaining:
        raise RuntimeError(f"{remaining} records to {topic} were not acknowledged")
    deadline = time.monotonic() + 30
    while _visible_end(bootstrap_servers, topic) < before + count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {count} records sent to {topic} never became visible")
        time.sleep(0.01)
    return count


def _visible_end(bootstrap_servers: str, topic: str) -> int:
    """The sum of the topic's end offsets as a read_committed consumer sees them."""
    partitions = admin.topic_partitions(bootstrap_servers, topics=[topic])[topic]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "streamjob-visible-end",
            "isolation.level": "read_committed",
        }
    )
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), 10, cached=False)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    isolation_level: str = "read_committed",
    timeout_s: float = 30.0,
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Every visible record ``(partition, offset, key, value)`` up to the end of each partition
    (the last stable offset under ``read_committed``), in partition and offset order."""
    count = admin.topic_partitions(bootstrap_servers, topics=[topic])[topic]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "streamjob-read-topic",
            "enable.auto.commit": False,
            "isolation.level": isolation_level,
            "enable.partition.eof": True,
        }
    )
    records: list[tuple[int, int, bytes | None, bytes | None]] = []
    try:
        ends = {}
        for p in range(count):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), 10, cached=False)
            ends[p] = high
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in pending])
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(pending)} never ended")
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                partition = message.partition() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and (
                        (message.offset() or 0) >= ends[partition]
                    ):
                        pending.discard(partition)
                    continue
                offset = message.offset() or 0
                if offset < ends[partition]:
                    records.append((partition, offset, message.key(), message.value()))
                if offset + 1 >= ends[partition]:
                    pending.discard(partition)
    finally:
        with contextlib.suppress(Exception):
            consumer.close()
    records.sort(key=lambda r: (r[0], r[1]))
    return records
