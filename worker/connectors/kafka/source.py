"""``KafkaSource``: partitions as splits, positions in checkpoints, bounded or unbounded.

Splits and assignment. A split is one partition, ``"topic:partition"``; on a fresh start every
subtask lists the topics (or the pattern's matches), sorts the partitions and takes split *k*
when ``k % parallelism`` is its index (:func:`streamjob.connectors.source.assign_splits`).

Positions. A split's position (JSON, kept in the checkpoint as operator list state) is
``{"offset": next offset to emit, "stop": end offset or None, "topics": {topic: partitions}}``.
The offsets of the broker's consumer group are committed when a checkpoint completes *only for
monitoring* (lag dashboards), as Flink does; the checkpoint is what a restore reads.

New partitions on restore. ``topics`` is the partition count of every topic the source knew
when the checkpoint was taken, copied into every split, so any subtask holding a restored
split knows which partitions are new. The new ones (sorted) go round-robin to the subtasks
``0 .. min(parallelism, restored splits) - 1`` (exactly those that hold a restored split, since
restored splits are dealt round-robin) and start at the earliest offset. A checkpoint of a
source that had no partition at all carries no such knowledge: partitions appearing after it
are not picked up (start without the checkpoint, or with a savepoint of a running source).

Bounded mode stops each partition at the end offset it had when the job first started (kept in
the position, so a restore stops at the same place): the last stable offset under
``read_committed``, so a transaction still open at start is not waited for.

Per-partition watermarks: :meth:`KafkaSource.per_partition` (see :mod:`.watermarks`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamjob import errors
from streamjob.clock import Clock
from streamjob.connectors.kafka import admin, offsets, serde, watermarks
from streamjob.connectors.source import Polled, ReaderContext, Source, SourceReader, SourceSplit
from streamjob.eventtime.strategy import WatermarkStrategy

log = logging.getLogger(__name__)

TopicPartitionKey = tuple[str, int]


def split_id(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def parse_split_id(value: str) -> TopicPartitionKey:
    topic, _, partition = value.rpartition(":")
    return topic, int(partition)


class KafkaSource(Source):
    """Read ``topics`` (or the topics whose whole name matches ``pattern``).

    ``deserializer``: ``"bytes"`` (default), ``"str"``, ``"json"`` or a function of the value's
    bytes. ``with_metadata=True`` emits :class:`~.serde.KafkaRecord` s instead of values.
    ``starting_offsets``: a :class:`~.offsets.StartingOffsets` (earliest by default).
    ``bounded=True`` stops at the end offsets seen at the first start. ``group_id`` names the
    consumer group the positions are committed to for monitoring (none by default).
    ``isolation_level``: ``read_committed`` (default) or ``read_uncommitted``. ``properties``
    are passed to librdkafka's consumer as they are (security settings, fetch sizes). Record
    timestamps are Kafka's (create or log-append time) in epoch milliseconds.
    ``rate_per_second`` caps the records per second over all subtasks (each subtask takes its
    share; polls return nothing while over budget, they never sleep): for backfills and tests.
    """

    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topics: list[str] | str | None = None,
        pattern: str | None = None,
        deserializer: str | serde.Deserializer = "bytes",
        with_metadata: bool = False,
        starting_offsets: offsets.StartingOffsets | None = None,
        bounded: bool = False,
        group_id: str | None = None,
        isolation_level: str = "read_committed",
        properties: Mapping[str, Any] | None = None,
        timeout_s: float = admin.DEFAULT_TIMEOUT_S,
        rate_per_second: float | None = None,
    ) -> None:
        if isinstance(topics, str):
            topics = [topics]
        if (topics is None) == (pattern is None):
            raise errors.JobDefinitionError(
                "KafkaSource needs either topics=[...] or pattern='regex', not both or neither"
            )
        if topics is not None and not topics:
            raise errors.JobDefinitionError("KafkaSource topics=[] names no topic")
        if isolation_level not in ("read_committed", "read_uncommitted"):
            raise errors.JobDefinitionError(
                "isolation_level is 'read_committed' or 'read_uncommitted', got "
                f"{isolation_level!r}"
            )
        if rate_per_second is not None and rate_per_second <= 0:
            raise errors.JobDefinitionError("rate_per_second must be positive")
        starting = starting_offsets or offsets.StartingOffsets.earliest()
        if starting.kind == "committed" and group_id is None:
            raise errors.JobDefinitionError(
                "StartingOffsets.committed() needs the consumer group: "
                "KafkaSource(..., group_id=...)"
            )
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.pattern = pattern
        self.deserialize = serde.deserializer(deserializer)
        self.with_metadata = with_metadata
        self.starting_offsets = starting
        self.bounded = bounded
        self.group_id = group_id
        self.isolation_level = isolation_level
        self.properties = dict(properties or {})
        self.timeout_s = timeout_s
        self.rate_per_second = rate_per_second
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_local"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def is_bounded(self) -> bool:
        return self.bounded

    def partitions(self) -> dict[str, int]:
        """``{topic: partition count}`` as the broker says now (clear errors if it cannot)."""
        return admin.topic_partitions(
            self.bootstrap_servers,
            topics=self.topics,
            pattern=self.pattern,
            config=self.properties,
            timeout_s=self.timeout_s,
        )

    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        known = self.partitions()
        return [
            SourceSplit(split_id(topic, p), {"offset": None, "stop": None, "topics": known})
            for topic, count in sorted(known.items())
            for p in range(count)
        ]

    def create_reader(self, context: ReaderContext) -> SourceReader:
        reader = KafkaSourceReader(self, context)
        self._local.last_reader = reader
        return reader

    def per_partition(self, strategy: WatermarkStrategy) -> WatermarkStrategy:
        """``strategy`` applied per partition: the watermark is the minimum over the partitions
        that are not idle (``strategy``'s idle timeout, per partition), as in Flink's
        KafkaSource. Pass the result to ``env.from_source(source, ...)`` with this source."""
        return watermarks.per_partition(strategy, self._take_last_reader)

    def _take_last_reader(self) -> KafkaSourceReader:
        reader: KafkaSourceReader | None = getattr(self._local, "last_reader", None)
        if reader is None:
            raise errors.JobDefinitionError(
                "a per-partition watermark strategy of a KafkaSource must be used with that "
                "same source: env.from_source(source, source.per_partition(strategy))"
            )
        self._local.last_reader = None
        return reader

    def consumer_config(self, subtask: int) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id or f"streamjob-unused-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": self.isolation_level,
            "enable.partition.eof": self.bounded,
            "allow.auto.create.topics": False,
            # never jump silently: an out-of-range answer is retried from our own position
            "auto.offset.reset": "error",
            "client.id": f"streamjob-source-{subtask}",
        }
        config.update(self.properties)
        return config


class KafkaSourceReader(SourceReader):
    """One subtask's consumer (``assign``ed, never subscribed: no group rebalancing)."""

    def __init__(self, source: KafkaSource, context: ReaderContext) -> None:
        self._source = source
        self._context = context
        self._consumer: Consumer | None = None
        self._positions: dict[TopicPartitionKey, int] = {}
        self._stops: dict[TopicPartitionKey, int | None] = {}
        self._done: set[TopicPartitionKey] = set()
        self._known: dict[str, int] = {}
        self.replayed = 0
        #: per-partition watermarks read these: the runs of the last batch, and the partitions
        self.last_runs: list[tuple[TopicPartitionKey, int]] = []
        self.track_runs = False
        self._rate = (
            None
            if source.rate_per_second is None
            else source.rate_per_second / max(1, context.parallelism)
        )
        self._rate_started: float | None = None
        self._emitted = 0
        self._out_of_range: dict[TopicPartitionKey, int] = {}

    @property
    def clock(self) -> Clock:
        return self._context.clock

    @property
    def assigned_partitions(self) -> list[TopicPartitionKey]:
        return sorted(self._positions)

    def _client(self) -> Consumer:
        if self._consumer is None:
            try:
                self._consumer = Consumer(self._source.consumer_config(self._context.subtask_index))
            except KafkaException as exc:
                raise admin.KafkaConnectorError(
                    f"cannot create a Kafka consumer: {exc.args[0]}"
                ) from exc
        return self._consumer

    def add_splits(self, splits: list[SourceSplit]) -> None:
        source = self._source
        fresh: list[TopicPartitionKey] = []
        restored = False
        for split in splits:
            tp = parse_split_id(split.split_id)
            position = split.position or {}
            for topic, count in dict(position.get("topics") or {}).items():
                self._known[topic] = max(self._known.get(topic, 0), int(count))
            self._stops[tp] = position.get("stop")
            if position.get("offset") is None:
                fresh.append(tp)
            else:
                restored = True
                self._positions[tp] = int(position["offset"])
        consumer = self._client()
        if fresh:
            start = offsets.resolve(
                source.starting_offsets,
                consumer,
                fresh,
                timeout_s=source.timeout_s,
                servers=source.bootstrap_servers,
            )
            self._positions.update(start)
        if restored:
            self._adopt_new_partitions(total_restored=sum(self._known.values()))
        if source.bounded:
            self._fix_stops()
        for tp, offset in self._positions.items():
            stop = self._stops.get(tp)
            if stop is not None and offset >= stop:
                self._done.add(tp)
        active = [
            TopicPartition(t, p, self._positions[(t, p)])
            for t, p in sorted(self._positions)
            if (t, p) not in self._done
        ]
        if active:
            consumer.assign(active)
        log.info(
            "Kafka source subtask %d reads %s",
            self._context.subtask_index,
            ", ".join(f"{t}:{p}@{o}" for (t, p), o in sorted(self._positions.items())) or "nothing",
        )

    def _adopt_new_partitions(self, total_restored: int) -> None:
        """Partitions the restored checkpoint did not know, dealt to the subtasks that hold
        restored splits (module docstring)."""
        if self._source.bounded or total_restored == 0:
            return
        now = self._source.partitions()
        new = sorted(
            (topic, p)
            for topic, count in now.items()
            for p in range(self._known.get(topic, 0), count)
        )
        owners = min(self._context.parallelism, total_restored)
        mine = [tp for j, tp in enumerate(new) if j % owners == self._context.subtask_index]
        if mine:
            log.info("Kafka source picks up new partitions %s", mine)
            start = offsets.resolve(
                offsets.StartingOffsets.earliest(),
                self._client(),
                mine,
                timeout_s=self._source.timeout_s,
                servers=self._source.bootstrap_servers,
            )
            self._positions.update(start)
            for tp in mine:
                self._stops[tp] = None
        self._known.update(now)

    def _fix_stops(self) -> None:
        missing = [tp for tp in self._positions if self._stops.get(tp) is None]
        if missing:
            ends = offsets.watermarks(
                self._client(), missing, self._source.timeout_s, self._source.bootstrap_servers
            )
            for tp in missing:
                self._stops[tp] = ends[tp][1]

    def poll(self, max_records: int) -> Polled | None:
        consumer = self._consumer
        if consumer is None or len(self._done) == len(self._positions):
            return None
        if self._rate is not None:
            max_records = self._allowance(max_records)
            if max_records == 0:
                return None
        try:
            messages = consumer.consume(num_messages=max_records, timeout=0)
        except KafkaException as exc:
            raise admin.KafkaConnectorError(f"Kafka consumer failed: {exc.args[0]}") from exc
        if not messages:
            return None
        deserialize = self._source.deserialize
        with_metadata = self._source.with_metadata
        positions = self._positions
        stops = self._stops
        records: list[Any] = []
        stamps: list[int] = []
        runs: list[tuple[TopicPartitionKey, int]] = []
        track = self.track_runs
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_error(error, message)
                continue
            tp = (message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            stop = stops.get(tp)
            if stop is not None and offset >= stop:
                self._finish_partition(tp)
                continue
            if offset < positions.get(tp, 0):
                continue  # a re-fetch of something already emitted
            positions[tp] = offset + 1
            value = deserialize(message.value())
            timestamp = message.timestamp()[1]
            if with_metadata:
                value = serde.KafkaRecord(
                    tp[0], tp[1], offset, timestamp, message.key(), value, message.headers()
                )
            records.append(value)
            stamps.append(timestamp)
            if track:
                if runs and runs[-1][0] == tp:
                    runs[-1] = (tp, runs[-1][1] + 1)
                else:
                    runs.append((tp, 1))
            if stop is not None and offset + 1 >= stop:
                self._finish_partition(tp)
        self.last_runs = runs
        self._emitted += len(records)
        if not records:
            return None
        return Polled(records, stamps)

    def _allowance(self, max_records: int) -> int:
        assert self._rate is not None
        now = time.monotonic()
        if self._rate_started is None:
            self._rate_started = now
        allowed = int((now - self._rate_started) * self._rate) - self._emitted
        return max(0, min(max_records, allowed))

    def _on_error(self, error: KafkaError, message: Any) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            tp = (message.topic() or "", message.partition() or 0)
            stop = self._stops.get(tp)
            end = message.offset() or 0
            if stop is not None and end >= stop:
                # read_committed: control records (transaction markers) and aborted records
                # between the last record and the end are invisible; nothing is skipped
                self._positions[tp] = max(self._positions.get(tp, 0), stop)
                self._finish_partition(tp)
            return
        if error.code() == KafkaError._AUTO_OFFSET_RESET:
            self._retry_out_of_range((message.topic() or "", message.partition() or 0), error)
            return
        if error.fatal() or error.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
        ):
            raise admin.KafkaConnectorError(
                f"Kafka source cannot read {message.topic()}[{message.partition()}]: {error.str()} "
                "(was the topic deleted, or is this consumer not authorized to read it?)"
            )
        log.warning("Kafka consumer reported %s", error.str())

    def _retry_out_of_range(self, tp: TopicPartitionKey, error: KafkaError) -> None:
        """The broker said our offset is out of range. A broker may say so for a moment about
        records it acknowledged a moment ago, so go back to our own position and retry;
        only a lasting answer (retention deleted the records) fails the job: silently
        resetting to the start or the end would duplicate or skip records."""
        tries = self._out_of_range[tp] = self._out_of_range.get(tp, 0) + 1
        position = self._positions.get(tp, offsets.BEGINNING)
        if tries > 100:
            raise admin.KafkaConnectorError(
                f"offset {position} of Kafka partition {tp[0]}[{tp[1]}] stays out of range "
                f"({error.str()}): were its records deleted by retention while the job was "
                "down? Restart without the checkpoint, or from other starting offsets"
            )
        log.info("Kafka %s[%d] offset %d out of range, retrying: %s", *tp, position, error.str())
        assert self._consumer is not None
        time.sleep(0.01)
        # a partition in this error state refuses seek(): assign everything again
        self._consumer.assign(
            [
                TopicPartition(t, p, o)
                for (t, p), o in sorted(self._positions.items())
                if (t, p) not in self._done
            ]
        )

    def _finish_partition(self, tp: TopicPartitionKey) -> None:
        if tp in self._done:
            return
        self._done.add(tp)
        if self._consumer is not None:
            self._consumer.pause([TopicPartition(tp[0], tp[1])])

    def next_available_in(self) -> float:
        if self._rate is not None:
            return min(0.05, max(0.002, 1.0 / self._rate))
        return 0.002

    def is_finished(self) -> bool:
        return self._source.bounded and len(self._done) == len(self._positions)

    def snapshot_splits(self) -> list[SourceSplit]:
        known = dict(self._known)
        splits = [
            SourceSplit(
                split_id(topic, p),
                {"offset": offset, "stop": self._stops.get((topic, p)), "topics": known},
            )
            for (topic, p), offset in sorted(self._positions.items())
        ]
        return splits

    def notify_checkpoint_complete(self, checkpoint_id: int, splits: list[SourceSplit]) -> None:
        """The completed checkpoint's positions to the consumer group, for lag monitoring only
        (never read back unless a fresh start asks for ``StartingOffsets.committed()``)."""
        if self._source.group_id is None or self._consumer is None:
            return
        offsets = []
        for split in splits:
            topic, partition = parse_split_id(split.split_id)
            offset = split.position.get("offset") if split.position else None
            if offset is not None and offset >= 0:
                offsets.append(TopicPartition(topic, partition, int(offset)))
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            log.warning("could not commit Kafka offsets for monitoring: %s", exc.args[0])

    def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.close()
