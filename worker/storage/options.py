"""Settings of the S3 storage, from code or from environment variables (pure, no boto3).

:class:`S3Options` is what :mod:`streamjob.storage.s3` turns into a boto3 client and transfer
configuration, and what :func:`streamjob.storage.factory.open_storage` reads from the
environment when no options are given. Credentials are deliberately not read here: unless given
explicitly, boto3's standard chain finds them (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, web identity, instance or pod role).

Environment variables (unset ones keep the default):

=====================================  ==================================================
``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``  endpoint of an S3-compatible server
``AWS_REGION``, ``AWS_DEFAULT_REGION``  region (``us-east-1`` when an endpoint is given)
``STREAMJOB_S3_PATH_STYLE``            ``true``/``false``; default true when an endpoint is set
``AWS_REQUEST_CHECKSUM_CALCULATION``   ``when_supported`` (boto3 default) / ``when_required``
``AWS_RESPONSE_CHECKSUM_VALIDATION``   ``when_supported`` (boto3 default) / ``when_required``
``AWS_RETRY_MODE``, ``AWS_MAX_ATTEMPTS``  ``legacy``/``standard``/``adaptive``; attempts
``STREAMJOB_S3_MULTIPART_THRESHOLD``   size from which ``put_file`` uploads in parts (``64MiB``)
``STREAMJOB_S3_MULTIPART_CHUNKSIZE``   part size (``16MiB``, at least 5 MiB)
``STREAMJOB_S3_MAX_CONCURRENCY``       parallel part transfers per file (``8``)
``STREAMJOB_S3_SSE``                   ``AES256`` or ``aws:kms`` server-side encryption
``STREAMJOB_S3_SSE_KMS_KEY_ID``        KMS key for ``aws:kms``
=====================================  ==================================================
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Literal

from streamjob.storage import errors

ChecksumMode = Literal["when_supported", "when_required"]
RetryMode = Literal["legacy", "standard", "adaptive"]
Encryption = Literal["AES256", "aws:kms"]

MiB = 1024 * 1024
_CHECKSUM_MODES = ("when_supported", "when_required")
_RETRY_MODES = ("legacy", "standard", "adaptive")
_ENCRYPTIONS = ("AES256", "aws:kms")
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": MiB, "mb": MiB, "mib": MiB}
_UNITS |= {"g": 1024 * MiB, "gb": 1024 * MiB, "gib": 1024 * MiB}


@dataclasses.dataclass(frozen=True)
class S3Options:
    """How to reach and use an S3-compatible endpoint; see the module docstring for env vars."""

    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool | None = None
    """True: ``endpoint/bucket/key``; False: ``bucket.endpoint/key``; None: boto3 decides."""
    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)
    profile: str | None = None
    request_checksum_calculation: ChecksumMode | None = None
    """``when_required`` stops boto3 >= 1.36 sending CRC32 checksums some servers reject."""
    response_checksum_validation: ChecksumMode | None = None
    retry_mode: RetryMode = "standard"
    max_attempts: int = 5
    """Total attempts per request, the first included (as ``AWS_MAX_ATTEMPTS``)."""
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    multipart_threshold: int = 64 * MiB
    multipart_chunksize: int = 16 * MiB
    max_concurrency: int = 8
    sse: Encryption | None = None
    sse_kms_key_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("request_checksum_calculation", "response_checksum_validation"):
            _check_choice(name, getattr(self, name), (*_CHECKSUM_MODES, None))
        _check_choice("retry_mode", self.retry_mode, _RETRY_MODES)
        _check_choice("sse", self.sse, (*_ENCRYPTIONS, None))
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise errors.StorageConfigError("sse_kms_key_id needs sse='aws:kms'")
        if self.multipart_chunksize < 5 * MiB:
            raise errors.StorageConfigError(
                f"multipart_chunksize must be at least 5 MiB (S3's minimum part size), "
                f"got {self.multipart_chunksize} bytes"
            )
        for name in ("max_attempts", "max_concurrency", "multipart_threshold"):
            if getattr(self, name) < 1:
                raise errors.StorageConfigError(f"{name} must be at least 1")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise errors.StorageConfigError(
                "give both access_key_id and secret_access_key, or neither (then boto3's "
                "standard credential chain is used)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> S3Options:
        """Options from environment variables (see the module docstring)."""
        endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
        path_style = _bool(environ, "STREAMJOB_S3_PATH_STYLE")
        values: dict[str, object] = {
            "endpoint_url": endpoint,
            "region": region,
            "path_style": path_style if path_style is not None else (True if endpoint else None),
            "request_checksum_calculation": _choice(
                environ, "AWS_REQUEST_CHECKSUM_CALCULATION", _CHECKSUM_MODES
            ),
            "response_checksum_validation": _choice(
                environ, "AWS_RESPONSE_CHECKSUM_VALIDATION", _CHECKSUM_MODES
            ),
            "retry_mode": _choice(environ, "AWS_RETRY_MODE", _RETRY_MODES),
            "max_attempts": _int(environ, "AWS_MAX_ATTEMPTS"),
            "multipart_threshold": _size(environ, "STREAMJOB_S3_MULTIPART_THRESHOLD"),
            "multipart_chunksize": _size(environ, "STREAMJOB_S3_MULTIPART_CHUNKSIZE"),
            "max_concurrency": _int(environ, "STREAMJOB_S3_MAX_CONCURRENCY"),
            "sse": _choice(environ, "STREAMJOB_S3_SSE", _ENCRYPTIONS),
            "sse_kms_key_id": environ.get("STREAMJOB_S3_SSE_KMS_KEY_ID") or None,
        }
        given = {k: v for k, v in values.items() if v is not None}
        return cls(**given)  # type: ignore[arg-type]  # each value was checked above

    def sse_arguments(self) -> dict[str, str]:
        """Server-side encryption arguments for PutObject and CreateMultipartUpload."""
        arguments: dict[str, str] = {}
        if self.sse:
            arguments["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id:
            arguments["SSEKMSKeyId"] = self.sse_kms_key_id
        return arguments

    def replace(self, **changes: object) -> S3Options:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def parse_size(text: str) -> int:
    """``"16MiB"``, ``"64mb"``, ``"1048576"`` -> bytes (binary units, as Flink's MemorySize)."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (write e.g. 16MiB, 64mb or 1048576)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise errors.StorageConfigError(f"{name} must be one of {shown}, got {value!r}")


def _choice(environ: Mapping[str, str], var: str, allowed: tuple[str, ...]) -> str | None:
    value = environ.get(var, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise errors.StorageConfigError(
            f"environment variable {var}={value!r} must be one of {', '.join(allowed)}"
        )
    return value


def _bool(environ: Mapping[str, str], var: str) -> bool | None:
    value = environ.get(var, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise errors.StorageConfigError(f"environment variable {var}={value!r} must be true or false")


def _int(environ: Mapping[str, str], var: str) -> int | None:
    value = environ.get(var, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.StorageConfigError(
            f"environment variable {var}={value!r} must be a whole number"
        ) from None


def _size(environ: Mapping[str, str], var: str) -> int | None:
    value = environ.get(var, "").strip()
    if not value:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise errors.StorageConfigError(f"environment variable {var}: {exc}") from None
