"""Test sources whose watermarks are deterministic: a source that moves a ``ManualClock`` by a
fixed tick on every poll, so periodic watermark emission happens at known batches."""

from __future__ import annotations

from typing import Any

from streamjob.clock import ManualClock
from streamjob.connectors.source import Polled, ReaderContext, Source, SourceReader, SourceSplit


class TickingSource(Source):
    """Non-parallel: ``batch`` records per poll, and the clock moves ``tick_ms`` before each."""

    name = "ticking"
    max_parallelism = 1

    def __init__(self, items: list[Any], clock: ManualClock, *, batch: int, tick_ms: int) -> None:
        self.items = items
        self.clock = clock
        self.batch = batch
        self.tick_ms = tick_ms

    def is_bounded(self) -> bool:
        return True

    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        return [SourceSplit("ticking", 0)]

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return _Reader(self)


class _Reader(SourceReader):
    def __init__(self, source: TickingSource) -> None:
        self._source = source
        self._position = 0

    def add_splits(self, splits: list[SourceSplit]) -> None:
        for split in splits:
            self._position = int(split.position or 0)

    def poll(self, max_records: int) -> Polled | None:
        items = self._source.items
        if self._position >= len(items):
            return None
        self._source.clock.advance(self._source.tick_ms)
        chunk = items[self._position : self._position + self._source.batch]
        self._position += len(chunk)
        return Polled(list(chunk))

    def is_finished(self) -> bool:
        return self._position >= len(self._source.items)

    def snapshot_splits(self) -> list[SourceSplit]:
        return [SourceSplit("ticking", self._position)]
