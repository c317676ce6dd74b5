"""Plain records returned by checkpoint storage: objects, multipart uploads, capabilities (pure).

:mod:`streamjob.storage.base` declares the interface that returns these; the probe in
:mod:`streamjob.storage.probe` fills :class:`StorageCapabilities`; exactly-once callers (the
checkpoint coordinator, two-phase-commit file sinks) call
:meth:`StorageCapabilities.require_put_if_absent` before they rely on the commit point.
"""

from __future__ import annotations

import dataclasses
import datetime

from streamjob.storage import errors


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """One object found by ``list``; ``key`` is relative to the storage root."""

    key: str
    size: int
    etag: str | None = None


@dataclasses.dataclass(frozen=True)
class MultipartUploadInfo:
    """An unfinished multipart upload, as found by ``list_multipart_uploads``."""

    key: str
    upload_id: str
    initiated: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class StorageCapabilities:
    """What the start-up probe found out about a storage.

    ``put_if_absent_safe`` is True only if a second conditional write of an existing key was
    refused and left the first content in place, and a race of concurrent conditional writers
    had exactly one winner. ``notes`` explain every finding in words.
    """

    location: str
    put_if_absent_safe: bool
    put_if_absent_sequential: bool
    put_if_absent_concurrent: bool
    notes: tuple[str, ...] = ()

    def require_put_if_absent(self, *, purpose: str = "exactly-once checkpoints") -> None:
        """Raise :class:`PutIfAbsentUnsupported` unless put-if-absent is safe here."""
        if self.put_if_absent_safe:
            return
        found = "; ".join(self.notes) or "put-if-absent is not honoured"
        raise errors.PutIfAbsentUnsupported(
            f"{purpose} need put-if-absent, which {self.location} does not honour ({found}). "
            "Use a server that supports 'If-None-Match: *' on PutObject (AWS S3, recent MinIO, "
            "recent SeaweedFS) or a local directory, or opt out explicitly and accept that two "
            "JobManagers could both commit a checkpoint.",
            location=self.location,
        )
