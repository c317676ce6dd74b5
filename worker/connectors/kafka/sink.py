"""``KafkaSink``: records to topics with no guarantee, at least once, or exactly once.

Guarantees (Flink's ``DeliveryGuarantee``):

* ``NONE``: produce and never wait; a crash loses what librdkafka had not sent.
* ``AT_LEAST_ONCE``: an idempotent producer; every checkpoint barrier (and the end of input)
  flushes and fails on any delivery error, so a completed checkpoint implies its records are
  in Kafka. A restore replays records after the checkpoint: duplicates, never gaps.
* ``EXACTLY_ONCE``: one Kafka transaction per subtask and checkpoint, driven by
  :class:`~streamjob.connectors.two_phase.TwoPhaseCommitSinkWriter` (its docstring has the
  protocol): written into at will, flushed and stored in the checkpoint at the barrier
  (pre-commit), committed when the checkpoint completes. Readers must use
  ``isolation.level=read_committed``.

Transactional ids (exactly once) are ``{prefix}-{subtask}-{n}``: ``n`` counts the transactions
of that subtask that wrote at least one record (an empty checkpoint interval uses no id), and
goes on from the restored checkpoint, so the ids a crashed attempt may have left open are
exactly ``n, n+1, ...`` up to the first id the coordinator never saw. Each transaction gets a
fresh librdkafka producer (a producer's transactional id is fixed, and a pre-committed
transaction must stay open while the next one is written). Every checkpoint holds one entry per
subtask (an empty one if nothing was written) with that subtask's next ``n``, so a restore
knows the old parallelism and where every old subtask stopped.

On restore, each new writer first, before writing anything:

1. probes and aborts the ids of its own subtask and of the old subtasks ``s >= parallelism``
   with ``s % parallelism == its index`` (downscaling), from the restored ``n`` upwards, by
   ``InitProducerId`` (:meth:`.transactions.Coordinators.abort_lingering`), until an id
   answers epoch 0 (never used); its own probing never races another writer's producers;
2. commits the restored pending transactions assigned to it with the stored producer id and
   epoch (:meth:`.transactions.Coordinators.commit`): the hard case, a crash after
   ``_metadata`` and before the commit, ends here with the transaction committed.

The transaction timeout (``transaction_timeout_ms``, default 15 minutes, the broker's default
maximum) must cover the checkpoint interval plus the longest recovery: a transaction the
broker times out is aborted, and its records are lost. :meth:`KafkaSink.check_checkpointing`
warns when it does not (the runner and the JobManager call it with the checkpoint interval the
job runs with), and the writer logs a warning when a transaction stayed open for more than half
of it.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streamjob import errors
from streamjob.connectors import two_phase
from streamjob.connectors.kafka import admin, serde, transactions
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter

log = logging.getLogger(__name__)

DEFAULT_TRANSACTION_TIMEOUT_MS = 15 * 60 * 1000


class DeliveryGuarantee(enum.Enum):
    NONE = "none"
    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"


class TransactionTimeoutWarning(UserWarning):
    """The sink's transaction timeout is shorter than the checkpoint interval."""


class KafkaSink(Sink):
    """Write records to ``topic`` (or ``topic_selector(record)``).

    ``value_serializer`` / ``key_serializer``: ``"bytes"`` (default: the value must be
    bytes or str), ``"str"``, ``"json"`` or a function returning bytes; ``key`` extracts the
    key from a record (None: no key). ``delivery_guarantee``: :class:`DeliveryGuarantee`;
    exactly-once needs ``transactional_id_prefix``, unique per job and stable across its
    restarts. ``properties`` go to librdkafka's producer as they are.
    """

    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic: str | None = None,
        topic_selector: Callable[[Any], str] | None = None,
        value_serializer: str | serde.Serializer | None = None,
        key: Callable[[Any], Any] | None = None,
        key_serializer: str | serde.Serializer | None = None,
        delivery_guarantee: DeliveryGuarantee = DeliveryGuarantee.AT_LEAST_ONCE,
        transactional_id_prefix: str | None = None,
        transaction_timeout_ms: int = DEFAULT_TRANSACTION_TIMEOUT_MS,
        properties: Mapping[str, Any] | None = None,
        timeout_s: float = admin.DEFAULT_TIMEOUT_S,
    ) -> None:
        if (topic is None) == (topic_selector is None):
            raise errors.JobDefinitionError(
                "KafkaSink needs either topic='name' or topic_selector=fn(record) -> name"
            )
        if not isinstance(delivery_guarantee, DeliveryGuarantee):
            raise errors.JobDefinitionError(
                f"delivery_guarantee must be a DeliveryGuarantee, got {delivery_guarantee!r}"
            )
        props = dict(properties or {})
        if delivery_guarantee is DeliveryGuarantee.EXACTLY_ONCE:
            if not transactional_id_prefix:
                raise errors.JobDefinitionError(
                    "an exactly-once KafkaSink needs transactional_id_prefix='...': unique per "
                    "job (two jobs with one prefix fence each other) and stable across restarts"
                )
            protocol_name = str(props.get("security.protocol", "plaintext")).lower()
            if protocol_name != "plaintext":
                raise errors.JobDefinitionError(
                    f"the exactly-once KafkaSink finishes transactions after a restore with its "
                    f"own plaintext protocol client, which cannot speak security.protocol="
                    f"{protocol_name}; use DeliveryGuarantee.AT_LEAST_ONCE on this cluster"
                )
        if transaction_timeout_ms <= 0:
            raise errors.JobDefinitionError("transaction_timeout_ms must be positive")
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.topic_selector = topic_selector
        self.serialize_value = serde.serializer(value_serializer)
        self.key = key
        self.serialize_key = serde.serializer(key_serializer)
        self.delivery_guarantee = delivery_guarantee
        self.transactional_id_prefix = transactional_id_prefix
        self.transaction_timeout_ms = transaction_timeout_ms
        self.properties = props
        self.timeout_s = timeout_s

    def check_checkpointing(self, interval_ms: int | None) -> None:
        """Warn (:class:`TransactionTimeoutWarning`) if a transaction would time out before
        the checkpoint that commits it can complete."""
        if self.delivery_guarantee is not DeliveryGuarantee.EXACTLY_ONCE or interval_ms is None:
            return
        if self.transaction_timeout_ms <= interval_ms:
            warnings.warn(
                f"KafkaSink transaction_timeout_ms={self.transaction_timeout_ms} is not longer "
                f"than the checkpoint interval ({interval_ms} ms): the broker will abort "
                "transactions before their checkpoint commits them and their records will be "
                "lost. Make the timeout several checkpoint intervals plus the longest recovery "
                "(and at most the broker's transaction.max.timeout.ms)",
                TransactionTimeoutWarning,
                stacklevel=2,
            )

    def producer_config(self, subtask: int) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": f"streamjob-sink-{subtask}",
            "linger.ms": 5,
        }
        if self.delivery_guarantee is DeliveryGuarantee.NONE:
            config["acks"] = 1
        else:
            config["enable.idempotence"] = True
        config.update(self.properties)
        return config

    def create_writer(self, context: SinkContext) -> SinkWriter:
        self._check_topic()
        if self.delivery_guarantee is DeliveryGuarantee.EXACTLY_ONCE:
            writer = ExactlyOnceWriter(self, context)
            writer.initialize()
            return writer
        return AtLeastOnceWriter(self, context)

    def _check_topic(self) -> None:
        """Fail at the start, clearly, if the broker is unreachable or the topic missing."""
        admin.topic_partitions(
            self.bootstrap_servers,
            topics=None if self.topic is None else [self.topic],
            pattern=None if self.topic is not None else ".*",
            config=self.properties,
            timeout_s=self.timeout_s,
        )


class _Producing:
    """Serialization and ``produce`` for both writers (one Python loop per batch)."""

    def __init__(self, sink: KafkaSink) -> None:
        self._sink = sink
        self.delivery_error: KafkaError | None = None

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None and self.delivery_error is None:
            self.delivery_error = error

    def produce(self, producer: Producer, records: list[Any]) -> None:
        sink = self._sink
        fixed_topic = sink.topic
        select = sink.topic_selector
        value_of = sink.serialize_value
        key_fn = sink.key
        key_of = sink.serialize_key
        produce = producer.produce
        for record in records:
            topic = fixed_topic if select is None else select(record)
            value = value_of(record)
            key = None if key_fn is None else key_of(key_fn(record))
            try:
                produce(topic, value, key)  # type: ignore[arg-type]
            except BufferError:  # the local queue is full: let deliveries drain
                producer.flush(sink.timeout_s)
                produce(topic, value, key)  # type: ignore[arg-type]
        producer.poll(0)

    def flush(self, producer: Producer, what: str) -> None:
        remaining = producer.flush(self._sink.timeout_s)
        if remaining:
            raise admin.KafkaConnectorError(
                f"{remaining} records to Kafka {self._sink.bootstrap_servers!r} were not "
                f"acknowledged within {self._sink.timeout_s:g} s at {what}: is the broker "
                "reachable and the topic writable?"
            )
        if self.delivery_error is not None:
            error, self.delivery_error = self.delivery_error, None
            raise admin.KafkaConnectorError(f"Kafka rejected records at {what}: {error.str()}")


class AtLeastOnceWriter(SinkWriter):
    """``NONE`` and ``AT_LEAST_ONCE``: one producer; flush at barriers and at the end."""

    def __init__(self, sink: KafkaSink, context: SinkContext) -> None:
        self._sink = sink
        self._producing = _Producing(sink)
        config = sink.producer_config(context.subtask_index)
        config["delivery.report.only.error"] = True
        config["on_delivery"] = self._producing.on_delivery
        self._producer = Producer(config)
        self._flushing = sink.delivery_guarantee is DeliveryGuarantee.AT_LEAST_ONCE

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        self._producing.produce(self._producer, records)

    def snapshot_state(self, checkpoint_id: int) -> list[Any] | None:
        if self._flushing:
            self._producing.flush(self._producer, f"checkpoint {checkpoint_id}")
        return None

    def finish(self) -> None:
        self._producing.flush(self._producer, "the end of input")

    def close(self) -> None:
        self._producer.flush(0)  # NONE: best effort; nothing is waited for


@dataclasses.dataclass
class KafkaTransaction:
    """One open transaction: no producer until its first record."""

    producer: Producer | None = None
    transactional_id: str | None = None
    seq: int | None = None
    started: float = 0.0


class ExactlyOnceWriter(two_phase.TwoPhaseCommitSinkWriter[KafkaTransaction]):
    """The descriptor of a pre-committed transaction: ``{"subtask", "next"}`` plus, if it
    wrote anything, ``{"tid", "pid", "epoch"}``."""

    def __init__(self, sink: KafkaSink, context: SinkContext) -> None:
        super().__init__(context)
        self._sink = sink
        self._producing = _Producing(sink)
        self._coordinators = transactions.Coordinators(
            sink.bootstrap_servers,
            timeout_s=sink.timeout_s,
            client_id=f"streamjob-sink-{context.subtask_index}",
        )
        self._next_seq = 0
        self._live: dict[str, KafkaTransaction] = {}
        self._warned_timeout = False

    @property
    def coordinators(self) -> transactions.Coordinators:
        return self._coordinators

    def transactional_id(self, subtask: int, seq: int) -> str:
        return f"{self._sink.transactional_id_prefix}-{subtask}-{seq}"

    # -- restore --------------------------------------------------------------------------------

    def initialize(self) -> None:
        """Probe and abort lingering ids (step 1 of the module docstring), then let the base
        class commit the restored transactions assigned here (step 2) and begin."""
        context = self.context
        next_by_subtask: dict[int, int] = {}
        for entry in context.restored_state or []:
            descriptor = two_phase.PendingTransaction.from_state(entry).descriptor
            subtask, nxt = int(descriptor["subtask"]), int(descriptor["next"])
            next_by_subtask[subtask] = max(next_by_subtask.get(subtask, 0), nxt)
        old_parallelism = max(next_by_subtask, default=context.parallelism - 1) + 1
        mine = [
            s
            for s in range(max(old_parallelism, context.parallelism))
            if s == context.subtask_index
            or (s >= context.parallelism and s % context.parallelism == context.subtask_index)
        ]
        for subtask in mine:
            self._abort_lingering(subtask, next_by_subtask.get(subtask, 0))
        self._next_seq = next_by_subtask.get(context.subtask_index, 0)
        super().initialize()

    def _abort_lingering(self, subtask: int, start: int) -> None:
        seq = start
        while True:
            tid = self.transactional_id(subtask, seq)
            epoch = self._coordinators.abort_lingering(tid, self._sink.transaction_timeout_ms)
            if epoch == 0:
                break
            seq += 1
        if seq > start:
            log.info(
                "aborted lingering Kafka transactions %s .. %s",
                self.transactional_id(subtask, start),
                self.transactional_id(subtask, seq - 1),
            )

    # -- the steps ------------------------------------------------------------------------------

    def begin_transaction(self, transaction_id: str) -> KafkaTransaction:
        return KafkaTransaction()

    def _open(self, transaction: KafkaTransaction) -> Producer:
        seq = self._next_seq
        self._next_seq += 1
        tid = self.transactional_id(self.context.subtask_index, seq)
        config = self._sink.producer_config(self.context.subtask_index)
        config.update(
            {
                "transactional.id": tid,
                "transaction.timeout.ms": self._sink.transaction_timeout_ms,
                "delivery.report.only.error": True,
                "on_delivery": self._producing.on_delivery,
            }
        )
        producer = Producer(config)
        try:
            producer.init_transactions(self._sink.timeout_s)
            producer.begin_transaction()
        except KafkaException as exc:
            raise admin.KafkaConnectorError(
                f"could not start Kafka transaction {tid}: {exc.args[0]} (a broker's "
                "transaction.max.timeout.ms below the sink's transaction_timeout_ms "
                f"({self._sink.transaction_timeout_ms}) is a common cause)"
            ) from exc
        transaction.producer, transaction.transactional_id, transaction.seq = producer, tid, seq
        transaction.started = time.monotonic()
        self._live[tid] = transaction
        return producer

    def write(
        self, transaction: KafkaTransaction, records: list[Any], timestamps: list[int] | None
    ) -> None:
        if not records:
            return
        producer = transaction.producer or self._open(transaction)
        self._producing.produce(producer, records)

    def pre_commit(self, transaction: KafkaTransaction) -> dict[str, Any]:
        descriptor: dict[str, Any] = {"subtask": self.context.subtask_index, "next": self._next_seq}
        if transaction.producer is None:
            return descriptor  # nothing written: an entry only to carry "next"
        tid = transaction.transactional_id
        assert tid is not None
        self._producing.flush(transaction.producer, f"the pre-commit of {tid}")
        described = self._coordinators.describe(tid)
        if described is None or described.state != "Ongoing":
            raise admin.KafkaConnectorError(
                f"Kafka transaction {tid} is no longer open at the checkpoint barrier (the "
                f"coordinator says {'nothing' if described is None else described.state}): "
                f"did its transaction timeout ({self._sink.transaction_timeout_ms} ms) expire? "
                "Raise transaction_timeout_ms above the checkpoint interval"
            )
        descriptor.update({"tid": tid, "pid": described.producer_id, "epoch": described.epoch})
        return descriptor

    def commit(self, descriptor: dict[str, Any]) -> None:
        tid = descriptor.get("tid")
        if tid is None:
            return
        live = self._live.pop(tid, None)
        if live is not None and live.producer is not None:  # this attempt's own transaction
            self._warn_if_near_timeout(tid, live.started)
            try:
                live.producer.commit_transaction(self._sink.timeout_s)
            except KafkaException as exc:
                raise admin.KafkaConnectorError(
                    f"could not commit Kafka transaction {tid}: {exc.args[0]}"
                ) from exc
            live.producer = None  # one transaction per producer: let it go
            return
        self._coordinators.commit(tid, int(descriptor["pid"]), int(descriptor["epoch"]))

    def abort(self, transaction: KafkaTransaction) -> None:
        if transaction.producer is None or transaction.transactional_id is None:
            return
        self._live.pop(transaction.transactional_id, None)
        producer, transaction.producer = transaction.producer, None
        producer.abort_transaction(self._sink.timeout_s)

    def close(self) -> None:
        super().close()
        # Pre-committed transactions stay open on the broker: the next attempt commits them
        # (or aborts them if no completed checkpoint holds them). Their producers are just
        # dropped; librdkafka does not end a transaction when a producer is destroyed.
        for live in self._live.values():
            live.producer = None
        self._live.clear()
        self._coordinators.close()

    def _warn_if_near_timeout(self, tid: str, started: float) -> None:
        open_ms = (time.monotonic() - started) * 1000
        if not self._warned_timeout and open_ms > self._sink.transaction_timeout_ms / 2:
            self._warned_timeout = True
            log.warning(
                "Kafka transaction %s stayed open %.0f ms, over half its timeout (%d ms): "
                "a slower checkpoint or recovery will lose records. Raise transaction_timeout_ms",
                tid,
                open_ms,
                self._sink.transaction_timeout_ms,
            )
