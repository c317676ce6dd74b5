"""A storage wrapper that counts bytes and requests, for tests and benchmarks.

``CountingStorage(inner)`` delegates every operation of
:class:`streamjob.storage.base.CheckpointStorage` and counts, thread-safely, the payload bytes
read and written and the requests per operation kind. Children share the parent's counters, so
a job's whole traffic shows in one place. Used by the rescale and incremental-checkpoint tests
("a rescaled subtask reads at most its share") and by ``bench/bench_storage.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from streamjob.storage import base, info


@dataclasses.dataclass(frozen=True)
class StorageCounters:
    """A consistent copy of the counters at one moment."""

    bytes_read: int
    bytes_written: int
    requests: Mapping[str, int]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes_read = 0
        self.bytes_written = 0
        self.requests: collections.Counter[str] = collections.Counter()

    def add(self, kind: str, *, read: int = 0, written: int = 0) -> None:
        with self.lock:
            self.requests[kind] += 1
            self.bytes_read += read
            self.bytes_written += written


class CountingStorage(base.CheckpointStorage):
    """Delegates to ``inner``; see :meth:`snapshot` and :meth:`reset`."""

    def __init__(
        self, inner: base.CheckpointStorage, *, _counters: _Counters | None = None
    ) -> None:
        self.inner = inner
        self._counters = _counters or _Counters()

    @property
    def bytes_read(self) -> int:
        return self._counters.bytes_read

    @property
    def bytes_written(self) -> int:
        return self._counters.bytes_written

    @property
    def requests(self) -> Mapping[str, int]:
        return self.snapshot().requests

    def snapshot(self) -> StorageCounters:
        c = self._counters
        with c.lock:
            return StorageCounters(c.bytes_read, c.bytes_written, dict(c.requests))

    def reset(self) -> StorageCounters:
        """Zero the counters; returns what they held."""
        c = self._counters
        with c.lock:
            before = StorageCounters(c.bytes_read, c.bytes_written, dict(c.requests))
            c.bytes_read = c.bytes_written = 0
            c.requests.clear()
        return before

    @property
    def url(self) -> str:
        return self.inner.url

    def describe(self) -> str:
        return self.inner.describe()

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)
        self._counters.add("put", written=len(data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        written = self.inner.put_if_absent(key, data)
        self._counters.add("put_if_absent", written=len(data))  # sent either way
        return written

    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> bytes:
        data = self.inner.get(key, start=start, end=end)
        self._counters.add("get", read=len(data))
        return data

    def size(self, key: str) -> int:
        self._counters.add("size")
        return self.inner.size(key)

    def exists(self, key: str) -> bool:
        self._counters.add("size")
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[info.ObjectInfo]:
        self._counters.add("list")
        yield from self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._counters.add("delete")
        self.inner.delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        self._counters.add("delete_many")
        self.inner.delete_many(keys)

    def open_multipart(self, key: str) -> base.MultipartUpload:
        self._counters.add("open_multipart")
        return _CountingUpload(self.inner.open_multipart(key), self._counters)

    def list_multipart_uploads(self, prefix: str = "") -> Iterator[info.MultipartUploadInfo]:
        self._counters.add("list_multipart_uploads")
        yield from self.inner.list_multipart_uploads(prefix)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._counters.add("abort_multipart")
        self.inner.abort_multipart(key, upload_id)

    def resume_multipart(
        self, key: str, upload_id: str, parts: Sequence[base.UploadedPart]
    ) -> base.MultipartUpload:
        return _CountingUpload(self.inner.resume_multipart(key, upload_id, parts), self._counters)

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        self.inner.put_file(key, path)
        self._counters.add("put_file", written=os.path.getsize(path))

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        self.inner.get_file(key, path)
        self._counters.add("get_file", read=os.path.getsize(path))

    def child(self, prefix: str) -> CountingStorage:
        return CountingStorage(self.inner.child(prefix), _counters=self._counters)

    def check_access(self) -> tuple[str, ...]:
        self._counters.add("check_access")
        return self.inner.check_access()

    def close(self) -> None:
        self.inner.close()


class _CountingUpload(base.MultipartUpload):
    def __init__(self, inner: base.MultipartUpload, counters: _Counters) -> None:
        super().__init__(
            key=inner.key, upload_id=inner.upload_id, location=inner.location, parts=inner.parts
        )
        self._inner = inner
        self._counters = counters

    def _do_upload_part(self, number: int, data: bytes) -> base.UploadedPart:
        self._inner.upload_part(data)
        self._counters.add("upload_part", written=len(data))
        return self._inner.parts[-1]

    def _do_complete(self) -> None:
        self._inner.complete()
        self._counters.add("complete_multipart")

    def _do_abort(self) -> None:
        self._inner.abort()
        self._counters.add("abort_multipart")
