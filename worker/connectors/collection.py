"""``from_collection``: a bounded, non-parallel source over an in-memory list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamjob.connectors.source import Polled, ReaderContext, Source, SourceReader, SourceSplit


class CollectionSource(Source):
    name = "collection"
    max_parallelism = 1

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = list(items)

    def is_bounded(self) -> bool:
        return True

    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        return [SourceSplit("collection", 0)]

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return CollectionReader(self.items)


class CollectionReader(SourceReader):
    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self._position: int | None = None

    def add_splits(self, splits: list[SourceSplit]) -> None:
        for split in splits:
            self._position = int(split.position or 0)

    def poll(self, max_records: int) -> Polled | None:
        if self._position is None or self._position >= len(self._items):
            return None
        start = self._position
        self._position = min(len(self._items), start + max_records)
        return Polled(self._items[start : self._position])

    def is_finished(self) -> bool:
        return self._position is None or self._position >= len(self._items)

    def snapshot_splits(self) -> list[SourceSplit]:
        return [] if self._position is None else [SourceSplit("collection", self._position)]
