"""KafkaSource against a real Kafka-protocol broker.

* bounded reads at parallelism 1 and 2 emit every record exactly once, and partition k is read
  by subtask ``k % parallelism`` (checked per record, not inferred from the output);
* starting offsets: earliest, latest, a timestamp, specific offsets, the group's committed
  offsets; deserializers: str, JSON, a function, tombstones, records with metadata;
* a pattern subscribes to the matching topics only;
* bad input: a missing topic and an unreachable broker fail with messages that say so;
* restore: positions come from the checkpointed splits (nothing re-read), and a topic that
  gained partitions since the checkpoint has the new ones read, from the start, once, by the
  subtasks holding restored splits; bounded mode keeps the end offsets of the first start;
* positions are committed to the consumer group at checkpoints (for monitoring);
* per-partition watermarks: the minimum over partitions, an idle partition stops holding it
  back (manual clock), and a windowed job with them produces the right windows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamjob import Duration, StreamEnvironment, WatermarkStrategy
from streamjob.clock import ManualClock
from streamjob.connectors.kafka import KafkaConnectorError, KafkaSource, StartingOffsets, admin
from streamjob.connectors.kafka.serde import KafkaRecord
from streamjob.connectors.kafka.testing_broker import produce
from streamjob.connectors.source import ReaderContext, SourceSplit, assign_splits
from streamjob.functions import MapFunction, RuntimeContext
from streamjob.testing import TestingSink, run_local
from streamjob.windows import TumblingEventTimeWindows
from tests.connectors.kafka.conftest import unique

# record timestamps an hour ago, on a 10 s boundary: timestamps near 1970 would be past the
# broker's retention, and Kafka deletes such records (fetching them is then out of range)
T0 = (int(time.time() * 1000) - 3_600_000) // 10_000 * 10_000


def _fill(bootstrap: str, name: str, partitions: int, per_partition: int) -> list[str]:
    values = []
    for p in range(partitions):
        batch = [f"p{p}-{i}" for i in range(per_partition)]
        produce(bootstrap, name, batch, partition=p)
        values.extend(batch)
    return values


class WhoReads(MapFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.subtask = runtime_context.get_index_of_this_subtask()

    def map(self, value: Any) -> Any:
        return (value.partition, value.value, self.subtask)


@pytest.mark.parametrize("p", [1, 2])
def test_bounded_read_is_complete_and_partitions_go_to_their_subtask(
    bootstrap: str, topic: Callable[..., str], p: int
) -> None:
    name = topic(3)
    values = _fill(bootstrap, name, 3, 50)
    sink = TestingSink()

    def job(env: StreamEnvironment) -> None:
        source = KafkaSource(
            bootstrap, topics=name, bounded=True, deserializer="str", with_metadata=True
        )
        env.from_source(source).map(WhoReads()).sink_to(sink)

    run_local(job, parallelism=p)
    assert sorted(v for _, v, _ in sink.committed) == sorted(values)
    assert all(subtask == partition % p for partition, _, subtask in sink.committed)


def _read(bootstrap: str, source: KafkaSource, p: int = 1) -> list[Any]:
    sink = TestingSink()
    run_local(lambda env: env.from_source(source).sink_to(sink), parallelism=p)
    return list(sink.committed)


def test_starting_offsets(bootstrap: str, topic: Callable[..., str]) -> None:
    name = topic(1)
    produce(
        bootstrap, name, [str(i) for i in range(10)], timestamps=range(T0 + 1000, T0 + 11000, 1000)
    )

    def read(start: StartingOffsets, **kw: Any) -> list[Any]:
        source = KafkaSource(
            bootstrap, topics=[name], bounded=True, deserializer="str", starting_offsets=start, **kw
        )
        return _read(bootstrap, source)

    assert read(StartingOffsets.earliest()) == [str(i) for i in range(10)]
    assert read(StartingOffsets.latest()) == []
    assert read(StartingOffsets.timestamp(T0 + 4500)) == [str(i) for i in range(4, 10)]
    assert read(StartingOffsets.timestamp(T0 + 99_000)) == []
    assert read(StartingOffsets.specific({(name, 0): 7})) == ["7", "8", "9"]
    group = unique("group")
    assert read(StartingOffsets.committed(), group_id=group) == [str(i) for i in range(10)]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    for _ in range(50):  # a loaded coordinator may refuse a commit per partition
        consumer.commit(offsets=[TopicPartition(name, 0, 6)], asynchronous=False)
        if consumer.committed([TopicPartition(name, 0)], 10)[0].offset == 6:
            break
    consumer.close()
    assert read(StartingOffsets.committed(), group_id=group) == ["6", "7", "8", "9"]
    assert read(StartingOffsets.committed("latest"), group_id=unique("g")) == []


def test_deserializers_and_metadata(bootstrap: str, topic: Callable[..., str]) -> None:
    name = topic(1)
    produce(bootstrap, name, [json.dumps({"n": i}) for i in range(3)], key=b"k")

    def read(**kw: Any) -> list[Any]:
        return _read(bootstrap, KafkaSource(bootstrap, topics=name, bounded=True, **kw))

    assert read(deserializer="json") == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert read() == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert read(deserializer=lambda b: len(b)) == [8, 8, 8]
    records = read(deserializer="json", with_metadata=True)
    assert [(r.offset, r.key, r.value["n"], r.partition) for r in records] == [
        (i, b"k", i, 0) for i in range(3)
    ]
    assert all(isinstance(r, KafkaRecord) and r.timestamp for r in records)
    produce(bootstrap, name, [None])  # type: ignore[list-item]
    assert read(deserializer="str")[-1] is None  # a tombstone


def test_a_pattern_reads_the_matching_topics(bootstrap: str, kafka_broker: Any) -> None:
    stem = unique("pat")
    for suffix in ("a", "b"):
        kafka_broker.create_topic(f"{stem}-{suffix}", 1)
        produce(bootstrap, f"{stem}-{suffix}", [suffix])
    kafka_broker.create_topic(f"x{stem}-c", 1)
    produce(bootstrap, f"x{stem}-c", ["c"])
    source = KafkaSource(bootstrap, pattern=f"{stem}-.*", bounded=True, deserializer="str")
    assert sorted(_read(bootstrap, source)) == ["a", "b"]


def test_a_missing_topic_is_named(bootstrap: str) -> None:
    source = KafkaSource(bootstrap, topics="no-such-topic")
    with pytest.raises(KafkaConnectorError, match=r"topic 'no-such-topic' does not exist.*create"):
        source.create_splits(1)
    assert "no-such-topic" not in admin.topic_partitions(bootstrap, pattern=".*")


def test_an_unreachable_broker_is_named() -> None:
    source = KafkaSource("127.0.0.1:1", topics="t", timeout_s=1)
    with pytest.raises(KafkaConnectorError, match=r"cannot reach Kafka at '127.0.0.1:1'"):
        source.create_splits(1)


def _readers(source: KafkaSource, splits: list[list[Any]] | None, p: int) -> list[Any]:
    """Readers of ``p`` subtasks given the checkpoint's split elements, round-robin as the
    runtime restores them (``None``: a fresh start)."""
    readers = []
    for i in range(p):
        reader = source.create_reader(ReaderContext(i, p))
        if splits is None:
            mine = assign_splits(source.create_splits(p), i, p)
        else:
            mine = [SourceSplit(s, pos) for k, (s, pos) in enumerate(splits) if k % p == i]
        reader.add_splits(mine)
        readers.append(reader)
    return readers


def _drain(readers: list[Any], want: int) -> list[tuple[int, Any]]:
    got: list[tuple[int, Any]] = []
    for _ in range(2000):
        for i, reader in enumerate(readers):
            polled = reader.poll(100)
            if polled is not None:
                got.extend((i, r) for r in polled.records)
        if len(got) >= want:
            break
        import time

        time.sleep(0.005)
    return got


def _snapshot(readers: list[Any]) -> list[list[Any]]:
    return [[s.split_id, s.position] for r in readers for s in r.snapshot_splits()]


def test_a_restore_continues_and_picks_up_new_partitions(
    bootstrap: str, topic: Callable[..., str]
) -> None:
    name = topic(2)
    first = _fill(bootstrap, name, 2, 20)
    source = KafkaSource(bootstrap, topics=name, deserializer="str")
    readers = _readers(source, None, 2)
    assert sorted(r for _, r in _drain(readers, 40)) == sorted(first)
    checkpoint = _snapshot(readers)
    assert [pos["offset"] for _, pos in checkpoint] == [20, 20]
    for reader in readers:
        reader.close()

    admin.add_partitions(bootstrap, name, 5)
    later = [f"p{p}-late" for p in range(5)]
    for p in range(5):
        produce(bootstrap, name, [later[p]], partition=p)
    restored = _readers(source, checkpoint, 3)
    got = _drain(restored, 5)
    assert sorted(r for _, r in got) == sorted(later), "re-read old records or missed new ones"
    owners = {tp: i for i, r in enumerate(restored) for tp in r.assigned_partitions}
    assert sorted(owners) == [(name, p) for p in range(5)]
    assert set(owners.values()) <= {0, 1}, "only subtasks holding restored splits adopt"
    again = _snapshot(restored)
    assert all(pos["topics"] == {name: 5} for _, pos in again)
    for reader in restored:
        reader.close()


def test_bounded_restore_keeps_the_first_end_offsets(
    bootstrap: str, topic: Callable[..., str]
) -> None:
    name = topic(1)
    produce(bootstrap, name, [str(i) for i in range(10)])
    source = KafkaSource(bootstrap, topics=name, deserializer="str", bounded=True)
    (reader,) = _readers(source, None, 1)
    polled = reader.poll(4) or _drain([reader], 1)
    assert polled
    checkpoint = _snapshot([reader])
    reader.close()
    assert checkpoint[0][1]["stop"] == 10
    produce(bootstrap, name, ["after-start"])
    (restored,) = _readers(source, checkpoint, 1)
    rest = _drain([restored], 10 - checkpoint[0][1]["offset"])
    assert "after-start" not in [r for _, r in rest]
    assert len(rest) == 10 - checkpoint[0][1]["offset"]
    assert restored.is_finished()
    restored.close()


def test_positions_are_committed_to_the_group_for_monitoring(
    bootstrap: str, topic: Callable[..., str], tmp_path: Any
) -> None:
    name, group = topic(2), unique("group")
    _fill(bootstrap, name, 2, 30)
    sink = TestingSink()
    source = KafkaSource(bootstrap, topics=name, bounded=True, group_id=group)

    def job(env: StreamEnvironment) -> None:
        env.from_source(source).uid("kafka").sink_to(sink).uid("sink")

    run_local(job, parallelism=2, checkpoint_dir=str(tmp_path), checkpoint_interval_ms=50)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committed = consumer.committed([TopicPartition(name, p) for p in range(2)], 10)
    consumer.close()
    assert [tp.offset for tp in committed] == [30, 30]


def test_per_partition_watermarks_with_idleness(bootstrap: str, topic: Callable[..., str]) -> None:
    name = topic(2)
    produce(bootstrap, name, ["a"] * 5, partition=0, timestamps=range(T0 + 1000, T0 + 1005))
    produce(bootstrap, name, ["b"] * 5, partition=1, timestamps=range(T0 + 9000, T0 + 9005))
    clock = ManualClock(0)
    source = KafkaSource(bootstrap, topics=name, deserializer="str")
    strategy = source.per_partition(
        WatermarkStrategy.for_bounded_out_of_orderness(0).with_idleness(Duration.of_seconds(5))
    )
    reader = source.create_reader(ReaderContext(0, 1, clock))
    reader.add_splits(source.create_splits(1))
    generator = strategy.create_generator()
    seen = 0
    for _ in range(2000):
        polled = reader.poll(3)
        if polled is not None:
            assert polled.timestamps is not None
            generator.on_batch(polled.timestamps)  # type: ignore[union-attr]
            seen += len(polled.records)
        if seen == 10:
            break
        import time

        time.sleep(0.005)
    assert seen == 10
    assert generator.current_watermark() == T0 + 1003  # type: ignore[union-attr]
    assert generator.partition_watermarks() == {(name, 0): T0 + 1003, (name, 1): T0 + 9003}  # type: ignore[union-attr]
    clock.advance(3000)
    produce(bootstrap, name, ["b"], partition=1, timestamps=[T0 + 9500])
    for _ in range(2000):
        polled = reader.poll(10)
        if polled is not None:
            assert polled.timestamps is not None
            generator.on_batch(polled.timestamps)  # type: ignore[union-attr]
            break
        import time

        time.sleep(0.005)
    clock.advance(2500)  # partition 0 idle for 5.5 s, partition 1 for 2.5 s
    assert generator.current_watermark() == T0 + 9499  # type: ignore[union-attr]
    reader.close()


def test_a_windowed_job_with_per_partition_watermarks(
    bootstrap: str, topic: Callable[..., str]
) -> None:
    name = topic(2)
    # partition 1 runs 20 s ahead in event time
    produce(
        bootstrap, name, ["x"] * 20, partition=0, timestamps=range(T0 + 10_000, T0 + 30_000, 1000)
    )
    produce(
        bootstrap, name, ["x"] * 20, partition=1, timestamps=range(T0 + 30_000, T0 + 50_000, 1000)
    )
    sink = TestingSink()

    def job(env: StreamEnvironment) -> None:
        env.set_auto_watermark_interval(1)  # periodic watermarks between the batches
        source = KafkaSource(bootstrap, topics=name, bounded=True, deserializer="str")
        strategy = source.per_partition(WatermarkStrategy.for_bounded_out_of_orderness(0))
        (
            env.from_source(source, strategy)
            .map(lambda v: (v, 1))
            .key_by(lambda r: r[0])
            .window(TumblingEventTimeWindows.of(Duration.of_seconds(10)))
            .reduce(lambda a, b: (a[0], a[1] + b[1]))
            .sink_to(sink)
        )

    run_local(job, parallelism=1, batch_size=3)
    assert sorted(c for _, c in sink.committed) == [10, 10, 10, 10]
