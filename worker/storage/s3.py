"""Checkpoint storage in any S3-compatible object store; the only module that imports boto3.

Implements :class:`streamjob.storage.base.CheckpointStorage` for a bucket and key prefix:
``put`` is PutObject, ``put_if_absent`` is PutObject with ``If-None-Match: *`` (412 means the
key exists; 409 ConditionalRequestConflict, which AWS documents for concurrent conditional
writes, is retried), ranged ``get`` sends ``Range``, ``list`` pages ListObjectsV2, ``delete_many``
batches DeleteObjects by 1,000, large files go through boto3's transfer manager with the
configured part size and concurrency. Multipart uploads live in
:mod:`streamjob.storage.s3multipart`, which drives this module's client. Settings come from
:mod:`streamjob.storage.options`; every boto3 exception passes through :meth:`S3Storage.translating`
and becomes an error of :mod:`streamjob.storage.s3errors`, naming endpoint, bucket and fix.
Children made by :meth:`S3Storage.child` share one thread-safe client.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import boto3.exceptions
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from streamjob.storage import base, errors, info, keys, options, s3errors, s3multipart

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

DELETE_BATCH = 1000
CONFLICT_RETRIES = 8
_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def make_client(opts: options.S3Options) -> S3Client:
    """A boto3 S3 client configured from ``opts`` (credentials: given, else boto3's chain)."""
    config: dict[str, Any] = {
        "signature_version": "s3v4",
        "retries": {"mode": opts.retry_mode, "total_max_attempts": opts.max_attempts},
        "connect_timeout": opts.connect_timeout,
        "read_timeout": opts.read_timeout,
        "max_pool_connections": max(10, opts.max_concurrency * 2),
    }
    if opts.path_style is not None:
        config["s3"] = {"addressing_style": "path" if opts.path_style else "virtual"}
    if opts.request_checksum_calculation:
        config["request_checksum_calculation"] = opts.request_checksum_calculation
    if opts.response_checksum_validation:
        config["response_checksum_validation"] = opts.response_checksum_validation
    session = boto3.session.Session(
        aws_access_key_id=opts.access_key_id,
        aws_secret_access_key=opts.secret_access_key,
        aws_session_token=opts.session_token,
        profile_name=opts.profile,
        region_name=opts.region or ("us-east-1" if opts.endpoint_url else None),
    )
    client: S3Client = session.client(
        "s3", endpoint_url=opts.endpoint_url, config=botocore.config.Config(**config)
    )
    return client


@dataclasses.dataclass
class _Shared:
    """What a storage and its children share: one client, one transfer configuration."""

    client: S3Client
    opts: options.S3Options
    transfer: boto3.s3.transfer.TransferConfig
    bucket_seen: bool = False


class S3Storage(base.CheckpointStorage):
    """Objects under ``s3://bucket/prefix``; ``client`` may be injected (tests)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        opts: options.S3Options | None = None,
        *,
        client: S3Client | None = None,
        _shared: _Shared | None = None,
    ) -> None:
        self._owner = _shared is None and client is None
        if _shared is None:
            opts = opts or options.S3Options()
            transfer = boto3.s3.transfer.TransferConfig(
                multipart_threshold=opts.multipart_threshold,
                multipart_chunksize=opts.multipart_chunksize,
                max_concurrency=opts.max_concurrency,
                use_threads=True,
            )
            _shared = _Shared(client or make_client(opts), opts, transfer)
        self._shared = _shared
        self.client = _shared.client
        self.bucket = bucket
        self.prefix = keys.child_prefix(prefix) if prefix.strip("/") else ""
        self.root = f"{self.prefix}/" if self.prefix else ""
        """Prepended to every key: ``prefix/`` or nothing."""
        self.sse: dict[str, Any] = dict(_shared.opts.sse_arguments())

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    def describe(self) -> str:
        return f"{self.url} at endpoint {self.endpoint}"

    def full_key(self, key: str) -> str:
        return self.root + keys.validate_key(key)

    def _where(self, key: str | None) -> s3errors.Where:
        signer: Any = getattr(self.client, "_request_signer", None)  # for messages only
        credentials = getattr(signer, "_credentials", None)
        return s3errors.Where(
            endpoint=self.endpoint,
            bucket=self.bucket,
            location=self.location_of(key) if key is not None else self.url,
            access_key_id=getattr(credentials, "access_key", None),
        )

    @contextlib.contextmanager
    def translating(self, operation: str, key: str | None = None) -> Iterator[None]:
        """Turn boto3's exceptions into storage errors naming endpoint, bucket, key and fix."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            raise self._from_client_error(exc, operation, key) from exc
        except boto3.exceptions.S3UploadFailedError as exc:  # wraps a ClientError
            cause = exc.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise self._from_client_error(cause, operation, key) from exc
            raise errors.StorageError(f"{operation} of {self._where(key).location}: {exc}") from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise s3errors.no_credentials(self._where(key), operation=operation) from exc
        except (*_UNREACHABLE, boto3.exceptions.RetriesExceededError) as exc:
            reason = str(getattr(exc, "last_exception", None) or exc)
            where = self._where(key)
            raise s3errors.unreachable(where, operation=operation, reason=reason) from exc
        except botocore.exceptions.FlexibleChecksumError as exc:
            where = self._where(key)
            raise s3errors.checksum_mismatch(where, operation=operation, reason=str(exc)) from exc

    def _from_client_error(
        self, exc: botocore.exceptions.ClientError, operation: str, key: str | None
    ) -> errors.StorageError:
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return s3errors.from_response(
            self._where(key),
            operation=operation,
            code=str(error.get("Code", "")),
            status=int(meta.get("HTTPStatusCode", 0)),
            message=str(error.get("Message", "")),
            key=key,
            retried=bool(meta.get("RetryAttempts", 0)),
        )

    # -- objects -------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        with self.translating("put", key):
            self.client.put_object(
                Bucket=self.bucket, Key=self.full_key(key), Body=data, **self.sse
            )

    def put_if_absent(self, key: str, data: bytes) -> bool:
        full = self.full_key(key)
        for attempt in range(CONFLICT_RETRIES):
            try:
                with self.translating("put_if_absent", key):
                    self.client.put_object(
                        Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*", **self.sse
                    )
                return True
            except s3errors.S3RequestFailed as failed:
                if failed.code == "ConditionalRequestConflict" or failed.status == 409:
                    time.sleep(min(1.0, 0.02 * 2**attempt))  # AWS: retry on 409
                    continue
                if failed.code == "NotImplemented":
                    raise s3errors.put_if_absent_unsupported(self._where(key)) from failed
                if failed.code != "PreconditionFailed" and failed.status != 412:
                    raise
                if failed.retried:  # an earlier attempt may have written it, response lost
                    with contextlib.suppress(errors.ObjectNotFound):
                        return self.get(key) == data
                return False
        raise errors.StorageError(
            f"put_if_absent of {self.location_of(key)} at endpoint {self.endpoint}: the server "
            f"answered 409 ConditionalRequestConflict {CONFLICT_RETRIES} times: retry later",
            location=self.location_of(key),
        )

    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> bytes:
        base.check_range(start, end)
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self.full_key(key)}
        if end is not None and end <= (start or 0):
            self.size(key)  # an empty range of a missing object still fails
            return b""
        ranged = start is not None or end is not None
        if ranged:
            request["Range"] = f"bytes={start or 0}-{'' if end is None else end - 1}"
        try:
            with self.translating("get", key):
                response = self.client.get_object(**request)
                body = response["Body"].read()
        except s3errors.S3RequestFailed as failed:
            if failed.code == "InvalidRange":
                return b""  # the range starts at or past the end: empty, like slicing
            raise
        if ranged and not response.get("ContentRange"):
            body = body[start:end]  # the server ignored the Range header
        return body

    def size(self, key: str) -> int:
        full = self.full_key(key)
        try:
            with self.translating("size", key):
                head = self.client.head_object(Bucket=self.bucket, Key=full)
        except errors.ObjectNotFound:
            if not self._shared.bucket_seen:
                self._check_bucket("size")  # HEAD cannot say whether key or bucket is missing
            raise
        return int(head["ContentLength"])

    def _check_bucket(self, operation: str) -> None:
        with self.translating(operation):
            self.client.head_bucket(Bucket=self.bucket)
        self._shared.bucket_seen = True

    def list(self, prefix: str = "") -> Iterator[info.ObjectInfo]:
        """Pages through ListObjectsV2, then sorts: some servers do not list in key order.

        SeaweedFS lists in directory order (``a/x`` before ``a-b``), so the listing is gathered
        and sorted here; memory grows with the number of keys under ``prefix``.
        """
        keys.validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        found: builtins.list[info.ObjectInfo] = []
        with self.translating("list", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.root + prefix):
                found.extend(
                    info.ObjectInfo(item["Key"][len(self.root) :], item["Size"], item.get("ETag"))
                    for item in page.get("Contents", [])
                )
        found.sort(key=lambda o: o.key)
        yield from found

    def delete(self, key: str) -> None:
        with self.translating("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        full = [self.full_key(key) for key in keys]
        for offset in range(0, len(full), DELETE_BATCH):
            batch = full[offset : offset + DELETE_BATCH]
            with self.translating("delete_many"):
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            failed = [f"{e.get('Key')}: {e.get('Code')}" for e in response.get("Errors", [])]
            if failed:
                raise errors.StorageError(
                    f"delete_many in {self.describe()} failed for {len(failed)} keys, e.g. "
                    f"{'; '.join(failed[:3])}: check s3:DeleteObject permission and retry",
                    location=self.url,
                )

    # -- large objects -------------------------------------------------------------------------

    def open_multipart(self, key: str) -> base.MultipartUpload:
        return s3multipart.open_upload(self, key)

    def list_multipart_uploads(self, prefix: str = "") -> Iterator[info.MultipartUploadInfo]:
        return s3multipart.list_uploads(self, prefix)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        s3multipart.abort_upload(self, key, upload_id)

    def resume_multipart(
        self, key: str, upload_id: str, parts: Sequence[base.UploadedPart]
    ) -> base.MultipartUpload:
        return s3multipart.resume_upload(self, key, upload_id, parts)

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        with self.translating("put_file", key):
            self.client.upload_file(
                os.fspath(path),
                self.bucket,
                self.full_key(key),
                ExtraArgs=self.sse or None,
                Config=self._shared.transfer,
            )

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        with self.translating("get_file", key):
            self.client.download_file(
                self.bucket, self.full_key(key), os.fspath(path), Config=self._shared.transfer
            )

    # -- structure -----------------------------------------------------------------------------

    def child(self, prefix: str) -> S3Storage:
        deeper = keys.join(self.prefix, keys.child_prefix(prefix))
        return S3Storage(self.bucket, deeper, _shared=self._shared)

    def check_access(self) -> tuple[str, ...]:
        with self.translating("check_access"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.root, MaxKeys=1)
        self._shared.bucket_seen = True
        opts = self._shared.opts
        return (
            f"endpoint {self.endpoint} reachable, bucket '{self.bucket}' exists, credentials "
            "accepted",
            f"checksums: request {opts.request_checksum_calculation or 'boto3 default'}, "
            f"response {opts.response_checksum_validation or 'boto3 default'}",
        )

    def close(self) -> None:
        if self._owner:
            self.client.close()
