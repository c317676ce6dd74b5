"""The errors checkpoint storage raises, each naming where and what to do.

Raised by :mod:`streamjob.storage.local` and :mod:`streamjob.storage.s3` (which translates
boto3's exceptions into these), by :mod:`streamjob.storage.factory` for bad URLs and options, and
by :mod:`streamjob.storage.probe` when exactly-once needs a put-if-absent the server lacks.
Every message says which endpoint, bucket or directory and key is concerned, and what to do.
"""

from __future__ import annotations

from streamjob import errors


class StorageError(errors.StreamJobError):
    """A storage operation failed; ``location`` names the URL (and endpoint) concerned."""

    def __init__(self, message: str, *, location: str = "") -> None:
        super().__init__(message)
        self.location = location


class ObjectNotFound(StorageError, KeyError):
    """The object does not exist. ``key`` is relative to the storage root."""

    def __init__(self, message: str, *, location: str = "", key: str = "") -> None:
        super().__init__(message, location=location)
        self.key = key

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidKey(StorageError, ValueError):
    """A key is malformed or would escape the storage root (``..``, absolute, reserved)."""


class StorageConfigError(StorageError, ValueError):
    """A storage URL or option is invalid; the message shows a valid form."""


class BucketNotFound(StorageError):
    """The bucket does not exist at the endpoint."""


class StorageAccessDenied(StorageError):
    """Credentials are missing or were rejected, or they lack a permission."""


class StorageUnreachable(StorageError):
    """The endpoint could not be reached (DNS, refused connection, timeout)."""


class PutIfAbsentUnsupported(StorageError):
    """The server does not honour put-if-absent, which exactly-once needs."""
