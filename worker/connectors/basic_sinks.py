"""Simple sinks: print (Flink's ``N> record`` format), collect into a list, count, discard."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from streamjob.connectors.sink import Sink, SinkContext, SinkWriter


class PrintSink(Sink):
    name = "print"

    def __init__(self, prefix: str = "", stream: TextIO | None = None) -> None:
        self.prefix = prefix
        self.stream = stream

    def create_writer(self, context: SinkContext) -> SinkWriter:
        label = self.prefix
        if context.parallelism > 1:
            label = (
                f"{label}:{context.subtask_index + 1}" if label else str(context.subtask_index + 1)
            )
        return _PrintWriter(f"{label}> " if label else "", self.stream)


class _PrintWriter(SinkWriter):
    def __init__(self, prefix: str, stream: TextIO | None) -> None:
        self._prefix = prefix
        self._stream = stream

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        stream = self._stream or sys.stdout
        prefix = self._prefix
        stream.write("".join(f"{prefix}{record}\n" for record in records))
        stream.flush()


class CollectSink(Sink):
    """Appends every record to ``target`` (in-process runs only)."""

    name = "collect"

    def __init__(self, target: list[Any]) -> None:
        self.target = target
        self._lock = threading.Lock()

    def create_writer(self, context: SinkContext) -> SinkWriter:
        return _CollectWriter(self)


class _CollectWriter(SinkWriter):
    def __init__(self, sink: CollectSink) -> None:
        self._sink = sink

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        with self._sink._lock:
            self._sink.target.extend(records)


class CountingSink(Sink):
    """Only counts records (benchmarks); ``count`` is the total over all subtasks."""

    name = "count"

    def __init__(self) -> None:
        self.count = 0

    def create_writer(self, context: SinkContext) -> SinkWriter:
        return _CountingWriter(self)


class _CountingWriter(SinkWriter):
    def __init__(self, sink: CountingSink) -> None:
        self._sink = sink

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        self._sink.count += len(records)


class DiscardingSink(Sink):
    name = "discard"

    def create_writer(self, context: SinkContext) -> SinkWriter:
        return _DiscardingWriter()


class _DiscardingWriter(SinkWriter):
    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        return None
