"""The exceptions streamjob raises, each written for the person who has to act on it.

Every message says what is wrong and what to do. Engine modules raise these; the CLI and the
JobManager print them without a traceback when the cause is the user's input.
"""

from __future__ import annotations


class StreamJobError(Exception):
    """Base class of every error streamjob raises on purpose."""


class JobDefinitionError(StreamJobError):
    """The job graph is invalid (found while building it, before any record flows)."""


class JobReferenceError(StreamJobError):
    """A ``module:function`` or ``path.py:function`` job reference could not be loaded."""


class KeyTypeError(StreamJobError, TypeError):
    """A key selector returned a key that cannot be encoded stably."""


class UserFunctionError(StreamJobError):
    """A user function raised; names the operator, the record and the user's line."""

    def __init__(self, message: str, *, operator: str, record: object | None = None) -> None:
        super().__init__(message)
        self.operator = operator
        self.record = record


class StateError(StreamJobError):
    """State was used wrongly (no current key, wrong state kind, incompatible restore)."""


class JobFailedError(StreamJobError):
    """A job ended in FAILED; ``__cause__`` holds the first failure."""


class JobCancelledError(StreamJobError):
    """A job was cancelled before it finished."""


class CheckpointError(StreamJobError):
    """A checkpoint could not be taken, written or read."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint's metadata or state files are unreadable or inconsistent."""


class RestoreError(CheckpointError):
    """A checkpoint or savepoint cannot be restored into this job (names what differs)."""
