"""The deterministic generator source: record *i* is a pure function of *i*.

The benchmark and recovery workhorse: replaying from a position reproduces exactly the same
records. Split *s* of *S* covers indices ``s, s+S, s+2S, ...`` (position = how many it emitted),
so any parallelism sees the same set of records. An optional rate limit (records per second
over all splits) paces it; ``batch_fn(indices)`` lets a job generate a whole batch at C speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from streamjob import errors
from streamjob.connectors.source import Polled, ReaderContext, Source, SourceReader, SourceSplit


class GeneratorSource(Source):
    name = "generator"

    def __init__(
        self,
        fn: Callable[[int], Any] | None = None,
        count: int | None = None,
        *,
        batch_fn: Callable[[range], Sequence[Any]] | None = None,
        timestamp_fn: Callable[[int], int] | None = None,
        rate_per_second: float | None = None,
        num_splits: int | None = None,
    ) -> None:
        if fn is None and batch_fn is None:
            raise errors.JobDefinitionError("GeneratorSource needs fn(i) or batch_fn(indices)")
        if count is not None and count < 0:
            raise errors.JobDefinitionError(f"GeneratorSource count must be >= 0, got {count}")
        if rate_per_second is not None and rate_per_second <= 0:
            raise errors.JobDefinitionError("rate_per_second must be positive")
        self.fn = fn
        self.batch_fn = batch_fn
        self.count = count
        self.timestamp_fn = timestamp_fn
        self.rate_per_second = rate_per_second
        self.num_splits = num_splits

    def is_bounded(self) -> bool:
        return self.count is not None

    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        n = self.num_splits or parallelism
        return [SourceSplit(f"gen-{s}-of-{n}", 0) for s in range(n)]

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return GeneratorReader(self)


def _parse_split_id(split_id: str) -> tuple[int, int]:
    _, index, _, total = split_id.split("-")
    return int(index), int(total)


class GeneratorReader(SourceReader):
    def __init__(self, source: GeneratorSource) -> None:
        self._source = source
        # split id -> [index, stride, emitted]
        self._splits: list[list[Any]] = []
        self._current = 0
        self._started = time.monotonic()
        self._emitted_since_start = 0

    def add_splits(self, splits: list[SourceSplit]) -> None:
        for split in splits:
            index, total = _parse_split_id(split.split_id)
            self._splits.append([split.split_id, index, total, int(split.position or 0)])

    def _end_of(self, index: int, stride: int) -> int | None:
        count = self._source.count
        if count is None:
            return None
        return max(0, (count - index + stride - 1) // stride)

    def _allowance(self, max_records: int) -> int:
        rate = self._source.rate_per_second
        if rate is None:
            return max_records
        if self._splits:  # this reader's share of the total rate, by its share of the splits
            rate = rate * len(self._splits) / self._splits[0][2]
        allowed = int((time.monotonic() - self._started) * rate) - self._emitted_since_start
        return max(0, min(max_records, allowed))

    def poll(self, max_records: int) -> Polled | None:
        budget = self._allowance(max_records)
        if budget == 0 or not self._splits:
            return None
        for _ in range(len(self._splits)):
            split = self._splits[self._current]
            self._current = (self._current + 1) % len(self._splits)
            _, index, stride, emitted = split
            end = self._end_of(index, stride)
            take = budget if end is None else min(budget, end - emitted)
            if take <= 0:
                continue
            first = index + emitted * stride
            indices = range(first, first + take * stride, stride)
            source = self._source
            if source.batch_fn is not None:
                records = list(source.batch_fn(indices))
            else:
                assert source.fn is not None
                records = list(map(source.fn, indices))
            split[3] = emitted + take
            self._emitted_since_start += take
            stamps = (
                None if source.timestamp_fn is None else list(map(source.timestamp_fn, indices))
            )
            return Polled(records, stamps)
        return None

    def next_available_in(self) -> float:
        rate = self._source.rate_per_second
        if rate is None:
            return 0.001
        if self._splits:
            rate = rate * len(self._splits) / self._splits[0][2]
        return min(0.05, max(0.001, 1.0 / rate))

    def is_finished(self) -> bool:
        if self._source.count is None:
            return False
        return all(s[3] >= (self._end_of(s[1], s[2]) or 0) for s in self._splits)

    def snapshot_splits(self) -> list[SourceSplit]:
        return [SourceSplit(s[0], s[3]) for s in self._splits]
