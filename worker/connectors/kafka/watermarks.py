"""Per-partition watermarks for the Kafka source, as Flink's KafkaSource generates them.

The runtime's watermark emitter works per subtask and sees a batch's timestamps, not where the
records came from; a subtask reading several partitions would then let a fast partition push
the watermark past a slow one's records. :func:`per_partition` wraps a strategy so that its
generator keeps one inner generator per partition of the reader it belongs to (the reader
records the partition runs of each batch it returns) and reports the minimum over the
partitions that are not idle. A partition is idle after the strategy's idle timeout without a
record (processing time, the reader's clock), so an empty partition stops holding the
watermark back; it counts again with its next record. When every partition is idle the
wrapper reports nothing new and the emitter's own idleness marks the output idle.

The link from generator to reader: ``env.from_source`` opens the reader and then, in the same
thread and without yielding, makes the generator; the source hands over the reader it made
last in this thread (:meth:`KafkaSource.per_partition`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamjob.eventtime.generators import PerRecordWatermarkGenerator, WatermarkGenerator
from streamjob.eventtime.strategy import WatermarkStrategy
from streamjob.runtime.events import MIN_WATERMARK

if TYPE_CHECKING:
    from streamjob.connectors.kafka.source import KafkaSourceReader

TopicPartitionKey = tuple[str, int]


class _PerRecordAdapter:
    """A per-record generator fed whole runs (the wrapper is a batch generator)."""

    def __init__(self, inner: PerRecordWatermarkGenerator) -> None:
        self._inner = inner
        self._latest = MIN_WATERMARK

    def on_batch(self, timestamps: list[int]) -> int | None:
        for ts in timestamps:
            wm = self._inner.on_event(None, ts)
            if wm is not None and wm > self._latest:
                self._latest = wm
        return None

    def current_watermark(self) -> int:
        wm = self._inner.on_periodic_emit()
        if wm is not None and wm > self._latest:
            self._latest = wm
        return self._latest


class PerPartitionGenerator:
    """The batch generator of :func:`per_partition` (one per source subtask)."""

    def __init__(
        self,
        factory: Callable[[], Any],
        reader: KafkaSourceReader,
        idle_timeout_ms: int | None,
    ) -> None:
        self._factory = factory
        self._reader = reader
        reader.track_runs = True
        self._idle_ms = idle_timeout_ms
        self._generators: dict[TopicPartitionKey, WatermarkGenerator | _PerRecordAdapter] = {}
        self._last_activity: dict[TopicPartitionKey, int] = {}
        self._started = reader.clock.now_ms()

    def _generator(self, tp: TopicPartitionKey) -> WatermarkGenerator | _PerRecordAdapter:
        generator = self._generators.get(tp)
        if generator is None:
            made = self._factory()
            generator = (
                _PerRecordAdapter(made) if isinstance(made, PerRecordWatermarkGenerator) else made
            )
            self._generators[tp] = generator
        return generator

    def on_batch(self, timestamps: list[int]) -> int | None:
        now = self._reader.clock.now_ms()
        start = 0
        for tp, count in self._reader.last_runs:
            self._generator(tp).on_batch(timestamps[start : start + count])
            self._last_activity[tp] = now
            start += count
        return None

    def current_watermark(self) -> int:
        now = self._reader.clock.now_ms()
        lowest: int | None = None
        for tp in self._reader.assigned_partitions:
            if self._idle_ms is not None:
                last = self._last_activity.get(tp, self._started)
                if now - last >= self._idle_ms:
                    continue
            wm = self._generator(tp).current_watermark()
            lowest = wm if lowest is None else min(lowest, wm)
        return MIN_WATERMARK if lowest is None else lowest

    def partition_watermarks(self) -> dict[TopicPartitionKey, int]:
        """Each partition's own watermark (for tests and debugging)."""
        return {tp: g.current_watermark() for tp, g in self._generators.items()}


def per_partition(
    strategy: WatermarkStrategy, take_reader: Callable[[], KafkaSourceReader]
) -> WatermarkStrategy:
    factory = strategy.generator_factory
    idle = strategy.idle_timeout_ms
    return dataclasses.replace(
        strategy, generator_factory=lambda: PerPartitionGenerator(factory, take_reader(), idle)
    )
