"""Row-format file sink: lines into part files under a directory, one series per subtask.

Part files are written as ``.part-{subtask}-{n}.inprogress`` and renamed to
``part-{subtask}-{n}`` when rolled (size limit) or at end of input, so readers never see a
half-written file. Exactly-once (pending files committed on checkpoint completion, S3 multipart
parts) is the checkpointing layer's two-phase-commit file sink; this one is for jobs without
checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from streamjob.connectors.sink import Sink, SinkContext, SinkWriter


class FileSink(Sink):
    name = "file"

    def __init__(
        self,
        directory: str,
        *,
        encoder: Callable[[Any], str] = str,
        roll_size_bytes: int = 128 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.encoder = encoder
        self.roll_size_bytes = roll_size_bytes

    def create_writer(self, context: SinkContext) -> SinkWriter:
        os.makedirs(self.directory, exist_ok=True)
        return _FileWriter(self, context.subtask_index)


class _FileWriter(SinkWriter):
    def __init__(self, sink: FileSink, subtask: int) -> None:
        self._sink = sink
        self._subtask = subtask
        self._counter = 0
        self._file: IO[str] | None = None
        self._path = ""
        self._size = 0

    def _open(self) -> IO[str]:
        while True:
            final = os.path.join(self._sink.directory, f"part-{self._subtask}-{self._counter}")
            if not os.path.exists(final):
                break
            self._counter += 1
        self._path = os.path.join(
            self._sink.directory, f".part-{self._subtask}-{self._counter}.inprogress"
        )
        self._size = 0
        return open(self._path, "w", encoding="utf-8")

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        if self._file is None:
            self._file = self._open()
        encoder = self._sink.encoder
        text = "".join(f"{encoder(record)}\n" for record in records)
        self._file.write(text)
        self._size += len(text)
        if self._size >= self._sink.roll_size_bytes:
            self._roll()

    def _roll(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        final = os.path.join(self._sink.directory, f"part-{self._subtask}-{self._counter}")
        os.replace(self._path, final)
        self._counter += 1

    def finish(self) -> None:
        self._roll()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
