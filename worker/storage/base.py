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
5. Another process can pick an upload up from its descriptor (key, upload id and the
   :class:`UploadedPart` list of :attr:`MultipartUpload.parts`) with ``resume_multipart`` and
   complete or abort it: this is how an exactly-once file sink commits after a restart.
   ``complete`` of an upload that no longer exists raises :class:`MultipartUploadNotFound`;
   :meth:`CheckpointStorage.complete_multipart` turns "gone, and the object is there with the
   expected size" into "already completed", so a commit can be repeated.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import os
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

from streamjob.storage import errors, info, keys, probe

MIN_PART_SIZE = 5 * 1024 * 1024
"""Minimum size of every multipart part except the last (S3's limit)."""

MAX_PARTS = 10_000


class UploadState(enum.Enum):
    OPEN = "open"
    COMPLETED = "completed"
    ABORTED = "aborted"


class MultipartUploadNotFound(errors.StorageError):
    """The multipart upload no longer exists: completed or aborted (S3's ``NoSuchUpload``)."""


@dataclasses.dataclass(frozen=True)
class UploadedPart:
    """One uploaded part, as needed to complete its upload from another process.

    ``etag`` (and on S3 the part's ``checksums``, e.g. ``ChecksumCRC32``) are what the server
    returned for the part; local storage leaves them empty. JSON round trip: :meth:`to_dict`,
    :meth:`from_dict`.
    """

    number: int
    size: int
    etag: str = ""
    checksums: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"number": self.number, "size": self.size}
        if self.etag:
            out["etag"] = self.etag
        if self.checksums:
            out["checksums"] = dict(self.checksums)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UploadedPart:
        checksums = data.get("checksums") or {}
        return cls(
            number=int(data["number"]),
            size=int(data["size"]),
            etag=str(data.get("etag", "")),
            checksums=tuple(sorted((str(k), str(v)) for k, v in checksums.items())),
        )


class MultipartUpload(abc.ABC):
    """An upload in parts; implementations provide the three ``_do_*`` steps.

    ``parts`` are the parts uploaded before (an upload resumed by ``resume_multipart``).
    """

    def __init__(
        self, *, key: str, upload_id: str, location: str, parts: Sequence[UploadedPart] = ()
    ) -> None:
        self.key = key
        self.upload_id = upload_id
        self.location = location
        self.state = UploadState.OPEN
        self._parts: list[UploadedPart] = list(parts)
        check_parts(self._parts, location=location)

    @property
    def part_count(self) -> int:
        return len(self._parts)

    @property
    def bytes_uploaded(self) -> int:
        return sum(p.size for p in self._parts)

    @property
    def parts(self) -> tuple[UploadedPart, ...]:
        """The parts uploaded so far: with ``key`` and ``upload_id``, the upload's descriptor."""
        return tuple(self._parts)

    def upload_part(self, data: bytes) -> int:
        """Upload the next part; returns its number (1-based)."""
        self._require_open("upload_part")
        if self._parts and self._parts[-1].size < MIN_PART_SIZE:
            raise errors.StorageError(
                f"multipart upload of {self.location}: part {len(self._parts)} has "
                f"{self._parts[-1].size} bytes but only the last part may be smaller than "
                f"{MIN_PART_SIZE} bytes: buffer more data before uploading a part",
                location=self.location,
            )
        if len(self._parts) >= MAX_PARTS:
            raise errors.StorageError(
                f"multipart upload of {self.location} already has {MAX_PARTS} parts, the "
                "maximum: use larger parts",
                location=self.location,
            )
        number = len(self._parts) + 1
        part = self._do_upload_part(number, bytes(data))
        self._parts.append(part)
        return number

    def complete(self) -> None:
        """Make the object visible under ``key`` (replacing any previous one).

        Raises :class:`MultipartUploadNotFound` if the upload was completed or aborted
        elsewhere (see :meth:`CheckpointStorage.complete_multipart` for a repeatable commit).
        """
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
    def _do_upload_part(self, number: int, data: bytes) -> UploadedPart: ...

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
    def resume_multipart(
        self, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> MultipartUpload:
        """The OPEN upload ``upload_id`` of ``key``, whose ``parts`` were uploaded (possibly by
        another process); more parts may follow, then ``complete`` or ``abort``.

        Nothing is checked with the server here: ``complete`` raises
        :class:`MultipartUploadNotFound` if the upload is gone. Parts uploaded but not listed in
        ``parts`` are dropped on completion (as S3 does).
        """

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> bool:
        """Complete a resumed upload, repeatably; False if it had been completed before.

        True means the server accepted the completion (AWS S3 and moto also accept a repeated
        one); False means the upload is gone and ``key`` holds an object of exactly the parts'
        total size, so an earlier call completed it. Sound for keys written once only (a sink's
        part files have unique names).

        Raises :class:`MultipartUploadNotFound` if the upload is gone and the object is missing
        or of another size (it was aborted: its data is lost).
        """
        upload = self.resume_multipart(key, upload_id, parts)
        try:
            upload.complete()
        except MultipartUploadNotFound as gone:
            expected = sum(p.size for p in parts)
            try:
                found = self.size(key)
            except errors.ObjectNotFound:
                found = None
            if found == expected:
                return False
            state = "is missing" if found is None else f"has {found} bytes, not {expected}"
            raise MultipartUploadNotFound(
                f"cannot complete multipart upload {upload_id} of {self.location_of(key)}: the "
                f"upload no longer exists and the object {state}, so it was aborted, not "
                "completed: its data is lost (was the upload aborted by hand or by a bucket "
                "lifecycle rule while the job was down?)",
                location=self.location_of(key),
            ) from gone
        return True

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


def check_parts(parts: Sequence[UploadedPart], *, location: str) -> None:
    """Reject a part list S3 would refuse: numbers 1..n in order, all but the last big enough."""
    for index, part in enumerate(parts, start=1):
        if part.number != index:
            raise errors.StorageError(
                f"multipart upload of {location}: parts must be numbered 1..n in order, found "
                f"part {part.number} at position {index}",
                location=location,
            )
        if index < len(parts) and part.size < MIN_PART_SIZE:
            raise errors.StorageError(
                f"multipart upload of {location}: part {index} has {part.size} bytes but only "
                f"the last part may be smaller than {MIN_PART_SIZE} bytes",
                location=location,
            )


def join(*parts: str) -> str:
    """Join key parts: ``join(job_id, "chk-3", "_metadata")``."""
    return keys.join(*parts)
