"""The one storage contract behind checkpoints, savepoints and exactly-once file sinks.

:class:`CheckpointStorage` is implemented by :mod:`streamjob.storage.local` (a directory) and
:mod:`streamjob.storage.s3` (any S3-compatible endpoint), wrapped by
:mod:`streamjob.storage.counting`, and opened from a URL by :mod:`streamjob.storage.factory`.
Nothing in the contract relies on rename or copy-if-match, which S3 servers implement
differently: the commit point of a checkpoint is a put-if-absent of its ``_metadata``.

Keys are relative to the storage's root (``chk-3/_metadata``); see :mod:`streamjob.storage.keys`.
Byte ranges follow Python slicing: ``start`` inclusive, ``end`` exclusive.

A multipart upload is a small state machine (:class:`UploadState`):

1. ``open_multipart(key)`` starts it (OPEN); nothing is visible under ``key`` yet.
2. ``upload_part(data)`` appends parts in order; every part but the last must be at least
   :data:`MIN_PART_SIZE` bytes (S3's rule, enforced everywhere so local tests catch it).
3. ``complete()`` makes the object visible at once (COMPLETED), replacing any old one; or
   ``abort()`` drops the parts (ABORTED). A call in the wrong state raises.
4. A restarted writer finds leftovers with ``list_multipart_uploads`` and removes them with
   ``abort_multipart``.
"""

from __future__ import annotations

import abc
import enum
import os
import types
from collections.abc import Iterable, Iterator
from typing import Self

from streamjob.storage import errors, info, keys, probe

MIN_PART_SIZE = 5 * 1024 * 1024
"""Minimum size of every multipart part except the last (S3's limit)."""

MAX_PARTS = 10_000


class UploadState(enum.Enum):
    OPEN = "open"
    COMPLETED = "completed"
    ABORTED = "aborted"


class MultipartUpload(abc.ABC):
    """An upload in parts; implementations provide the three ``_do_*`` steps."""

    def __init__(self, *, key: str, upload_id: str, location: str) -> None:
        self.key = key
        self.upload_id = upload_id
        self.location = location
        self.state = UploadState.OPEN
        self._sizes: list[int] = []

    @property
    def part_count(self) -> int:
        return len(self._sizes)

    @property
    def bytes_uploaded(self) -> int:
        return sum(self._sizes)

    def upload_part(self, data: bytes) -> int:
        """Upload the next part; returns its number (1-based)."""
        self._require_open("upload_part")
        if self._sizes and self._sizes[-1] < MIN_PART_SIZE:
            raise errors.StorageError(
                f"multipart upload of {self.location}: part {len(self._sizes)} has "
                f"{self._sizes[-1]} bytes but only the last part may be smaller than "
                f"{MIN_PART_SIZE} bytes: buffer more data before uploading a part",
                location=self.location,
            )
        if len(self._sizes) >= MAX_PARTS:
            raise errors.StorageError(
                f"multipart upload of {self.location} already has {MAX_PARTS} parts, the "
                "maximum: use larger parts",
                location=self.location,
            )
        number = len(self._sizes) + 1
        self._do_upload_part(number, bytes(data))
        self._sizes.append(len(data))
        return number

    def complete(self) -> None:
        """Make the object visible under ``key`` (replacing any previous one)."""
        self._require_open("complete")
        self._do_complete()
        self.state = UploadState.COMPLETED

    def abort(self) -> None:
        """Drop the parts; aborting twice is allowed, aborting after complete is not."""
        if self.state is UploadState.ABORTED:
            return
        self._require_open("abort")
        self._do_abort()
        self.state = UploadState.ABORTED

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if self.state is UploadState.OPEN:
            self.abort()  # leaving the block without complete() drops the upload

    def _require_open(self, operation: str) -> None:
        if self.state is not UploadState.OPEN:
            raise errors.StorageError(
                f"cannot {operation} multipart upload {self.upload_id} of {self.location}: "
                f"it is already {self.state.value}",
                location=self.location,
            )

    @abc.abstractmethod
    def _do_upload_part(self, number: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def _do_complete(self) -> None: ...

    @abc.abstractmethod
    def _do_abort(self) -> None: ...


class CheckpointStorage(abc.ABC):
    """Objects under one root (a directory, or a bucket and prefix), addressed by relative keys."""

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """``file:///abs/root`` or ``s3://bucket/prefix``."""

    def describe(self) -> str:
        """The location for messages (S3 adds the endpoint)."""
        return self.url

    def location_of(self, key: str) -> str:
        """The full location of ``key`` for messages."""
        return f"{self.url.rstrip('/')}/{key}"

    # -- objects -------------------------------------------------------------------------------

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` atomically, replacing any previous object."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write only if ``key`` does not exist: True if written, False if it existed.

        Atomic: of concurrent writers exactly one gets True. Whether the server really honours
        this is what :meth:`probe` finds out.
        """

    @abc.abstractmethod
    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Read ``key``, or the byte range ``[start, end)`` of it (``end`` exclusive).

        Like slicing, a range past the end is cut short. Raises :class:`ObjectNotFound`.
        """

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; raises :class:`ObjectNotFound`."""

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except errors.ObjectNotFound:
            return False
        return True

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[info.ObjectInfo]:
        """Objects whose key starts with ``prefix`` (a string prefix), sorted by key, lazily."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error (as in S3)."""

    @abc.abstractmethod
    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several keys (S3: batches of 1,000); missing keys are ignored."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many were deleted."""
        doomed = [o.key for o in self.list(prefix)]
        self.delete_many(doomed)
        return len(doomed)

    # -- large objects -------------------------------------------------------------------------

    @abc.abstractmethod
    def open_multipart(self, key: str) -> MultipartUpload:
        """Start a multipart upload of ``key`` (see the module docstring for its states)."""

    @abc.abstractmethod
    def list_multipart_uploads(self, prefix: str = "") -> Iterator[info.MultipartUploadInfo]:
        """Unfinished multipart uploads whose key starts with ``prefix``."""

    @abc.abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abort an unfinished upload found by :meth:`list_multipart_uploads`."""

    @abc.abstractmethod
    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        """Upload a local file (S3: in parallel parts above the multipart threshold)."""

    @abc.abstractmethod
    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        """Download ``key`` into a local file, replacing it."""

    # -- structure and lifecycle ---------------------------------------------------------------

    @abc.abstractmethod
    def child(self, prefix: str) -> CheckpointStorage:
        """The same storage rooted ``prefix`` deeper (``storage.child(job_id)``)."""

    def check_access(self) -> tuple[str, ...]:
        """First step of :meth:`probe`: reachable, exists, credentials valid; returns notes.

        Raises :class:`BucketNotFound`, :class:`StorageAccessDenied` or
        :class:`StorageUnreachable`, each naming the location and the fix.
        """
        return ()

    def probe(self) -> info.StorageCapabilities:
        """Check access, then whether put-if-absent is honoured (sequentially and racing)."""
        return probe.probe_storage(self)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections and thread pools."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"


def check_range(start: int | None, end: int | None) -> None:
    """Reject negative or reversed ranges (implementations call this before reading)."""
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise ValueError(f"byte range must not be negative: start={start}, end={end}")
    if start is not None and end is not None and end < start:
        raise ValueError(f"byte range end {end} is before start {start} (end is exclusive)")


def join(*parts: str) -> str:
    """Join key parts: ``join(job_id, "chk-3", "_metadata")``."""
    return keys.join(*parts)
