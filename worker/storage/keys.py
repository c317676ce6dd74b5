"""Object keys: validation and joining, shared by every storage implementation (pure).

A key is relative to a storage's root: ``/``-separated segments such as ``chk-3/_metadata``.
Segments may not be empty, ``.`` or ``..`` (so a key never escapes the root on a filesystem), and
may not start with :data:`RESERVED_PREFIX`, which the local implementation uses for its temp
files and multipart parts (hidden from listings). :mod:`streamjob.storage.base` and both
implementations call these helpers.
"""

from __future__ import annotations

from streamjob.storage import errors

RESERVED_PREFIX = ".streamjob-"
"""Segments starting with this are internal to an implementation and invisible to ``list``."""

MAX_KEY_BYTES = 1024
"""S3's limit on a full key; local storage applies it too so both accept the same keys."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise :class:`InvalidKey`."""
    if not isinstance(key, str) or not key:
        raise errors.InvalidKey(f"storage key must be a non-empty string, got {key!r}")
    if key.startswith("/"):
        raise errors.InvalidKey(
            f"storage key {key!r} is absolute: keys are relative to the storage root "
            "(write 'chk-3/_metadata', not '/chk-3/_metadata')"
        )
    _check_segments(key, key.split("/"))
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise errors.InvalidKey(
            f"storage key is longer than {MAX_KEY_BYTES} bytes: {key[:80]!r}..."
        )
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if valid for ``list``: empty, or a key that may end with ``/``."""
    if prefix == "":
        return prefix
    if prefix.startswith("/"):
        raise errors.InvalidKey(f"list prefix {prefix!r} must be relative to the storage root")
    segments = prefix.split("/")
    if segments[-1] == "":
        segments = segments[:-1]
    # the last segment may be a partial name ("chk-"), but never "." or ".."
    _check_segments(prefix, segments)
    return prefix


def join(*parts: str) -> str:
    """Join key parts with single slashes: ``join("job", "chk-3/", "_metadata")``."""
    pieces = [p.strip("/") for p in parts if p.strip("/")]
    return "/".join(pieces)


def child_prefix(prefix: str) -> str:
    """Normalise the prefix a child storage is rooted at: validated, no surrounding slashes."""
    stripped = prefix.strip("/")
    validate_key(stripped)
    return stripped


def _check_segments(key: str, segments: list[str]) -> None:
    for segment in segments:
        if segment in ("", ".", ".."):
            raise errors.InvalidKey(
                f"storage key {key!r} has an empty, '.' or '..' segment: keys may not escape "
                "the storage root or contain '//'"
            )
        if segment.startswith(RESERVED_PREFIX):
            raise errors.InvalidKey(
                f"storage key {key!r} uses the reserved name prefix {RESERVED_PREFIX!r}: "
                "choose another name"
            )
        if "\x00" in segment:
            raise errors.InvalidKey(f"storage key {key!r} contains a NUL character")
