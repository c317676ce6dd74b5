"""Test sources whose watermarks are deterministic: a source that moves a ``ManualClock`` by a
fixed tick on every poll, so periodic watermark emission happens at known batches."""

from __future__ import annotations

import time
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


class Signal:
    """Set by a sink when results arrive; sources waiting on it then finish."""

    def __init__(self) -> None:
        self.is_set = False


class WaitingSource(Source):
    """Emits ``items`` (``batch`` per poll, moving the clock ``tick_ms`` on every poll, even an
    empty one), then stays open until ``signal`` is set or ``deadline_s`` of real time passed.

    ``finished_by_signal`` tells which: a test can prove results arrived while it was open.
    """

    name = "waiting"
    max_parallelism = 1

    def __init__(
        self,
        items: list[Any],
        clock: ManualClock,
        signal: Signal,
        *,
        batch: int = 2,
        tick_ms: int = 0,
        deadline_s: float = 1.0,
    ) -> None:
        self.items = items
        self.clock = clock
        self.signal = signal
        self.batch = batch
        self.tick_ms = tick_ms
        self.deadline_s = deadline_s
        self.finished_by_signal: bool | None = None

    def is_bounded(self) -> bool:
        return True

    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        return [SourceSplit("waiting", 0)]

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return _WaitingReader(self)


class _WaitingReader(SourceReader):
    def __init__(self, source: WaitingSource) -> None:
        self._source = source
        self._position = 0
        self._deadline = time.monotonic() + source.deadline_s

    def add_splits(self, splits: list[SourceSplit]) -> None:
        return None

    def poll(self, max_records: int) -> Polled | None:
        source = self._source
        if source.tick_ms:
            source.clock.advance(source.tick_ms)
        if self._position >= len(source.items):
            return None
        chunk = source.items[self._position : self._position + source.batch]
        self._position += len(chunk)
        return Polled(list(chunk))

    def next_available_in(self) -> float:
        return 0.002

    def is_finished(self) -> bool:
        if self._position < len(self._source.items):
            return False
        if self._source.signal.is_set:
            self._source.finished_by_signal = True
            return True
        if time.monotonic() > self._deadline:
            self._source.finished_by_signal = False
            return True
        return False

    def snapshot_splits(self) -> list[SourceSplit]:
        return [SourceSplit("waiting", self._position)]
