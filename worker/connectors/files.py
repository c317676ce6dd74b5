"""Text-file source: one split per file, position = byte offset of the next line.

Lines are read in binary and decoded as UTF-8 without the line ending, so a position is exact
and a restored reader continues at the next unread line.
"""

from __future__ import annotations

import glob
import os
from typing import IO, Any

from streamjob import errors
from streamjob.connectors.source import Polled, ReaderContext, Source, SourceReader, SourceSplit


class TextFileSource(Source):
    name = "text-files"

    def __init__(self, *paths: str, encoding: str = "utf-8") -> None:
        if not paths:
            raise errors.JobDefinitionError("TextFileSource needs at least one path or glob")
        self.paths = paths
        self.encoding = encoding

    def files(self) -> list[str]:
        found: list[str] = []
        for path in self.paths:
            if os.path.isdir(path):
                found.extend(
                    os.path.join(path, name)
                    for name in sorted(os.listdir(path))
                    if not name.startswith((".", "_")) and os.path.isfile(os.path.join(path, name))
                )
            elif any(ch in path for ch in "*?["):
                found.extend(sorted(glob.glob(path)))
            elif os.path.isfile(path):
                found.append(path)
            else:
                raise errors.JobDefinitionError(
                    f"text file source: {path!r} is neither a file, a directory nor a glob "
                    "that matches; check the path (relative paths are taken from the "
                    f"working directory {os.getcwd()!r})"
                )
        return sorted(set(found))

    def is_bounded(self) -> bool:
        return True

    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        return [SourceSplit(os.path.abspath(path), 0) for path in self.files()]

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return TextFileReader(self.encoding)


class TextFileReader(SourceReader):
    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._splits: list[list[Any]] = []  # [path, offset, done]
        self._index = 0
        self._file: IO[bytes] | None = None

    def add_splits(self, splits: list[SourceSplit]) -> None:
        self._splits.extend([s.split_id, int(s.position or 0), False] for s in splits)

    def poll(self, max_records: int) -> Polled | None:
        while self._index < len(self._splits):
            split = self._splits[self._index]
            if self._file is None:
                self._file = open(split[0], "rb")  # noqa: SIM115 - kept open across polls
                self._file.seek(split[1])
            readline = self._file.readline
            encoding = self._encoding
            lines: list[str] = []
            offset = split[1]
            for _ in range(max_records):
                raw = readline()
                if not raw:
                    break
                offset += len(raw)
                lines.append(raw.rstrip(b"\r\n").decode(encoding))
            split[1] = offset
            if len(lines) < max_records:
                split[2] = True
                self._file.close()
                self._file = None
                self._index += 1
            if lines:
                return Polled(lines)
        return None

    def is_finished(self) -> bool:
        return self._index >= len(self._splits)

    def snapshot_splits(self) -> list[SourceSplit]:
        return [SourceSplit(path, offset) for path, offset, _ in self._splits]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
