"""Plain-words errors for S3 failures: which endpoint, bucket and key, and what to do (pure).

:mod:`streamjob.storage.s3` catches botocore's exceptions, extracts the error code, HTTP status
and message, and asks :func:`from_response`, :func:`unreachable` or :func:`no_credentials` for the
:mod:`streamjob.storage.errors` exception to raise. Keeping this apart keeps boto3 out of it
(only the S3 module may import boto3) and lets the messages be tested without a server.
"""

from __future__ import annotations

import dataclasses

from streamjob.storage import errors

_CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken")
_CHECKSUM_WORDS = ("checksum", "crc32", "crc64", "content-sha256", "x-amz-trailer", "trailer")
_CHECKSUM_FIX = (
    "if this server rejects the CRC32 checksums boto3 >= 1.36 sends, set "
    "request_checksum_calculation='when_required' and response_checksum_validation="
    "'when_required' (env AWS_REQUEST_CHECKSUM_CALCULATION=when_required and "
    "AWS_RESPONSE_CHECKSUM_VALIDATION=when_required)"
)
_PERMISSIONS = (
    "s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucketMultipartUploads "
    "and s3:AbortMultipartUpload"
)


class S3RequestFailed(errors.StorageError):
    """An S3 error response the storage may handle itself (412, 409, 416, NoSuchUpload...)."""

    def __init__(
        self, message: str, *, location: str, code: str, status: int, retried: bool = False
    ) -> None:
        super().__init__(message, location=location)
        self.code = code
        self.status = status
        self.retried = retried
        """The request was retried: an earlier attempt may have taken effect."""


@dataclasses.dataclass(frozen=True)
class Where:
    """What a failed request was about."""

    endpoint: str
    bucket: str
    location: str
    """``s3://bucket/key`` (or the storage URL when no key is concerned)."""
    access_key_id: str | None = None


def from_response(
    where: Where,
    *,
    operation: str,
    code: str,
    status: int,
    message: str,
    key: str | None,
    retried: bool = False,
) -> errors.StorageError:
    """The error to raise for an S3 error response."""
    at = f"at endpoint {where.endpoint}"
    if code in ("NoSuchUpload", "InvalidRange", "PreconditionFailed"):
        return S3RequestFailed(  # answers the storage handles itself
            f"{operation} of {where.location} {at}: {code}: {message}",
            location=where.location,
            code=code,
            status=status,
            retried=retried,
        )
    if code == "NoSuchBucket" or (status == 404 and key is None):
        return bucket_not_found(where)
    if code in ("NoSuchKey", "NotFound", "404") or status == 404:
        return errors.ObjectNotFound(
            f"no object {where.location} (bucket '{where.bucket}' {at})",
            location=where.location,
            key=key or "",
        )
    if code in _CREDENTIAL_CODES:
        return errors.StorageAccessDenied(
            f"{operation} of {where.location} {at}: the credentials were rejected ({code}: "
            f"{message or 'no message'}; access key id {where.access_key_id or 'unknown'}): "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or the pod's "
            "role) to credentials this endpoint knows",
            location=where.location,
        )
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        return errors.StorageAccessDenied(
            f"{operation} of {where.location} {at} was denied ({code}: {message or 'no message'}; "
            f"access key id {where.access_key_id or 'unknown'}): check the credentials, and "
            f"grant {_PERMISSIONS} on bucket '{where.bucket}'",
            location=where.location,
        )
    text = f"{code} {message}".lower()
    if status == 400 and any(word in text for word in _CHECKSUM_WORDS):
        return errors.StorageError(
            f"{operation} of {where.location} {at} was refused: {code}: {message}; {_CHECKSUM_FIX}",
            location=where.location,
        )
    if code == "NotImplemented" or status == 501:
        return S3RequestFailed(
            f"{operation} of {where.location} {at}: the server does not implement this request "
            f"({code}: {message})",
            location=where.location,
            code="NotImplemented",
            status=status,
        )
    if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
        return errors.StorageError(
            f"{operation} of {where.location} {at} failed after retries: {code}: {message}: "
            "the server is overloaded or failing; raise max_attempts (AWS_MAX_ATTEMPTS) or use "
            "retry_mode='adaptive', and check the server's health",
            location=where.location,
        )
    return S3RequestFailed(
        f"{operation} of {where.location} {at} failed: HTTP {status} {code}: {message}",
        location=where.location,
        code=code,
        status=status,
        retried=retried,
    )


def bucket_not_found(where: Where) -> errors.BucketNotFound:
    return errors.BucketNotFound(
        f"bucket '{where.bucket}' does not exist at endpoint {where.endpoint}: create it "
        f"(aws s3 mb s3://{where.bucket} --endpoint-url {where.endpoint}) or fix "
        "checkpoints.dir",
        location=where.location,
    )


def unreachable(where: Where, *, operation: str, reason: str) -> errors.StorageUnreachable:
    return errors.StorageUnreachable(
        f"cannot reach S3 endpoint {where.endpoint} ({operation} of {where.location}, bucket "
        f"'{where.bucket}'): {reason}: check the endpoint URL (AWS_ENDPOINT_URL or the storage "
        "options), that the server is running, and that the network allows the connection",
        location=where.location,
    )


def no_credentials(where: Where, *, operation: str) -> errors.StorageAccessDenied:
    return errors.StorageAccessDenied(
        f"no credentials found for S3 endpoint {where.endpoint} ({operation} of "
        f"{where.location}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile "
        "(AWS_PROFILE), or give the pod an IAM role",
        location=where.location,
    )


def put_if_absent_unsupported(where: Where) -> errors.PutIfAbsentUnsupported:
    return errors.PutIfAbsentUnsupported(
        f"endpoint {where.endpoint} does not implement 'If-None-Match: *' on PutObject "
        f"(writing {where.location}): use a server that does, or opt out of exactly-once",
        location=where.location,
    )


def checksum_mismatch(where: Where, *, operation: str, reason: str) -> errors.StorageError:
    return errors.StorageError(
        f"{operation} of {where.location} at endpoint {where.endpoint}: the response failed "
        f"checksum validation ({reason}); retry, and {_CHECKSUM_FIX}",
        location=where.location,
    )
