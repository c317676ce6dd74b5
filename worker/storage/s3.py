"""Checkpoint storage in any S3-compatible object store; the only module that imports boto3.

Implements :class:`streamjob.storage.base.CheckpointStorage` for a bucket and key prefix:
``put`` is PutObject, ``put_if_absent`` is PutObject with ``If-None-Match: *`` (412 means the
key exists; 409 ConditionalRequestConflict, which AWS documents for concurrent conditional
writes, is retried), ranged ``get`` sends ``Range``, ``list`` pages ListObjectsV2, ``delete_many``
batches DeleteObjects by 1,000, large files go through boto3's transfer manager with the
configured part size and concurrency. Settings come from :mod:`streamjob.storage.options`;
failures become the errors of :mod:`streamjob.storage.s3errors`, naming endpoint, bucket and fix.
Children made by :meth:`S3Storage.child` share one thread-safe client.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import os
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import boto3.exceptions
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from streamjob.storage import base, errors, info, keys, options, s3errors

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

DELETE_BATCH = 1000
CONFLICT_RETRIES = 8


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
    region = opts.region or ("us-east-1" if opts.endpoint_url else None)
    session = boto3.session.Session(
        aws_access_key_id=opts.access_key_id,
        aws_secret_access_key=opts.secret_access_key,
        aws_session_token=opts.session_token,
        profile_name=opts.profile,
        region_name=region,
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
    """Objects under ``s3://bucket/prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        opts: options.S3Options | None = None,
        *,
        client: S3Client | None = None,
        _shared: _Shared | None = None,
    ) -> None:
        if _shared is None:
            opts = opts or options.S3Options()
            transfer = boto3.s3.transfer.TransferConfig(
                multipart_threshold=opts.multipart_threshold,
                multipart_chunksize=opts.multipart_chunksize,
                max_concurrency=opts.max_concurrency,
                use_threads=True,
            )
            _shared = _Shared(client or make_client(opts), opts, transfer)
            self._owner = client is None
        else:
            self._owner = False
        self._shared = _shared
        self._client = _shared.client
        self.bucket = bucket
        self.prefix = keys.child_prefix(prefix) if prefix.strip("/") else ""
        sse: dict[str, Any] = {}
        if _shared.opts.sse:
            sse["ServerSideEncryption"] = _shared.opts.sse
        if _shared.opts.sse_kms_key_id:
            sse["SSEKMSKeyId"] = _shared.opts.sse_kms_key_id
        self._sse = sse

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    @property
    def client(self) -> S3Client:
        return self._client

    def describe(self) -> str:
        return f"{self.url} at endpoint {self.endpoint}"

    def _full(self, key: str) -> str:
        keys.validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str | None) -> s3errors.Where:
        signer: Any = getattr(self._client, "_request_signer", None)  # for messages only
        credentials = getattr(signer, "_credentials", None)
        return s3errors.Where(
            endpoint=self.endpoint,
            bucket=self.bucket,
            location=self.location_of(key) if key is not None else self.url,
            access_key_id=getattr(credentials, "access_key", None),
        )

    @contextlib.contextmanager
    def _errors(self, operation: str, key: str | None = None) -> Iterator[None]:
        """Translate boto3's exceptions into storage errors naming endpoint, bucket and fix."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            raise self._from_client_error(exc, operation, key) from exc
        except boto3.exceptions.S3UploadFailedError as exc:
            cause = exc.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise self._from_client_error(cause, operation, key) from exc
            raise errors.StorageError(
                f"{operation} of {self.location_of(key or '')}: {exc}"
            ) from exc
        except boto3.exceptions.RetriesExceededError as exc:
            reason = str(getattr(exc, "last_exception", exc))
            raise s3errors.unreachable(
                self._where(key), operation=operation, reason=reason
            ) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise s3errors.no_credentials(self._where(key), operation=operation) from exc
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectionClosedError,
        ) as exc:
            raise s3errors.unreachable(
                self._where(key), operation=operation, reason=str(exc)
            ) from exc
        except botocore.exceptions.FlexibleChecksumError as exc:
            raise s3errors.checksum_mismatch(
                self._where(key), operation=operation, reason=str(exc)
            ) from exc

    def _from_client_error(
        self, exc: botocore.exceptions.ClientError, operation: str, key: str | None
    ) -> errors.StorageError:
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return s3errors.from_response(
            self._where(key),
            operation=operation,
            code=str(error.get("Code", "")),
            status=status,
            message=str(error.get("Message", "")),
            key=key,
        )

    # -- objects -------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        with self._errors("put", key):
            self._client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, **self._sse)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        full = self._full(key)
        for attempt in range(CONFLICT_RETRIES):
            try:
                with self._errors("put_if_absent", key):
                    try:
                        self._client.put_object(
                            Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*", **self._sse
                        )
                    except botocore.exceptions.ClientError as exc:
                        outcome = self._conditional_outcome(exc, key, data)
                        if outcome is None:
                            raise
                        return outcome
            except _Conflict:
                time.sleep(min(1.0, 0.02 * 2**attempt))
                continue
            return True
        raise errors.StorageError(
            f"put_if_absent of {self.location_of(key)} at endpoint {self.endpoint}: the server "
            f"answered 409 ConditionalRequestConflict {CONFLICT_RETRIES} times: retry later",
            location=self.location_of(key),
        )

    def _conditional_outcome(
        self, exc: botocore.exceptions.ClientError, key: str, data: bytes
    ) -> bool | None:
        """False if a conditional put found the key; raises _Conflict for 409; None otherwise."""
        code = exc.response.get("Error", {}).get("Code", "")
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode", 0)
        if code == "ConditionalRequestConflict" or status == 409:
            raise _Conflict
        if code in ("NotImplemented",) or status == 501:
            raise errors.PutIfAbsentUnsupported(
                f"endpoint {self.endpoint} does not implement 'If-None-Match: *' on PutObject "
                f"(writing {self.location_of(key)}): use a server that does, or opt out of "
                "exactly-once",
                location=self.location_of(key),
            )
        if code != "PreconditionFailed" and status != 412:
            return None
        if meta.get("RetryAttempts", 0):
            # an earlier attempt may have written the object before its response was lost
            with contextlib.suppress(errors.ObjectNotFound):
                return self.get(key) == data
        return False

    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> bytes:
        base.check_range(start, end)
        full = self._full(key)
        if end is not None and end <= (start or 0):
            self.size(key)  # an empty range of a missing object still fails
            return b""
        ranged = start is not None or end is not None
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if ranged:
            request["Range"] = f"bytes={start or 0}-{'' if end is None else end - 1}"
        with self._errors("get", key):
            try:
                response = self._client.get_object(**request)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # the range starts at or past the end: empty, like slicing
                raise
            body = response["Body"].read()
        if ranged and not response.get("ContentRange"):
            body = body[start:end]  # the server ignored the Range header
        return body

    def size(self, key: str) -> int:
        full = self._full(key)
        with self._errors("size", key):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=full)
            except botocore.exceptions.ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404 and not self._shared.bucket_seen:
                    self._check_bucket("size")  # HEAD cannot say whether key or bucket is missing
                raise
        return int(head["ContentLength"])

    def _check_bucket(self, operation: str) -> None:
        with self._errors(operation):
            self._client.head_bucket(Bucket=self.bucket)
        self._shared.bucket_seen = True

    def list(self, prefix: str = "") -> Iterator[info.ObjectInfo]:
        """Pages through ListObjectsV2, then sorts: some servers do not list in key order.

        SeaweedFS lists in directory order (``a/x`` before ``a-b``), so the listing is gathered
        and sorted here; memory grows with the number of keys under ``prefix``.
        """
        keys.validate_prefix(prefix)
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        found: builtins.list[info.ObjectInfo] = []
        with self._errors("list", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix):
                found.extend(
                    info.ObjectInfo(key=item["Key"][len(root) :], size=item["Size"],
                                    etag=item.get("ETag"))
                    for item in page.get("Contents", [])
                )  # fmt: skip
        found.sort(key=lambda o: o.key)
        yield from found

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        batch: list[str] = []
        for key in keys:
            batch.append(self._full(key))
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, batch: builtins.list[str]) -> None:
        with self._errors("delete_many"):
            response = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
        failed = [
            f"{e.get('Key')}: {e.get('Code')} {e.get('Message')}"
            for e in response.get("Errors", [])
        ]
        if failed:
            raise errors.StorageError(
                f"delete_many in {self.describe()} failed for {len(failed)} keys, e.g. "
                f"{'; '.join(failed[:3])}: check s3:DeleteObject permission and retry",
                location=self.url,
            )

    # -- large objects -------------------------------------------------------------------------

    def open_multipart(self, key: str) -> base.MultipartUpload:
        with self._errors("open_multipart", key):
            response = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self._full(key), **self._sse
            )
        return S3MultipartUpload(self, key=key, upload_id=response["UploadId"])

    def list_multipart_uploads(self, prefix: str = "") -> Iterator[info.MultipartUploadInfo]:
        keys.validate_prefix(prefix)
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_multipart_uploads")
        found: list[info.MultipartUploadInfo] = []
        with self._errors("list_multipart_uploads", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix):
                for upload in page.get("Uploads", []):
                    found.append(
                        info.MultipartUploadInfo(
                            key=upload["Key"][len(root) :],
                            upload_id=upload["UploadId"],
                            initiated=upload.get("Initiated"),
                        )
                    )
        yield from sorted(found, key=lambda u: (u.key, u.upload_id))

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with self._errors("abort_multipart", key):
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._full(key), UploadId=upload_id
                )
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        with self._errors("put_file", key):
            self._client.upload_file(
                os.fspath(path),
                self.bucket,
                self._full(key),
                ExtraArgs=self._sse or None,
                Config=self._shared.transfer,
            )

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        with self._errors("get_file", key):
            self._client.download_file(
                self.bucket, self._full(key), os.fspath(path), Config=self._shared.transfer
            )

    # -- structure -----------------------------------------------------------------------------

    def child(self, prefix: str) -> S3Storage:
        deeper = keys.join(self.prefix, keys.child_prefix(prefix))
        return S3Storage(self.bucket, deeper, _shared=self._shared)

    def check_access(self) -> tuple[str, ...]:
        root = f"{self.prefix}/" if self.prefix else ""
        with self._errors("check_access"):
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=root, MaxKeys=1)
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
            self._client.close()


class _Conflict(Exception):
    """409 ConditionalRequestConflict: a concurrent conditional write; retry (AWS's advice)."""


class S3MultipartUpload(base.MultipartUpload):
    """CreateMultipartUpload / UploadPart / CompleteMultipartUpload or AbortMultipartUpload."""

    def __init__(self, storage: S3Storage, *, key: str, upload_id: str) -> None:
        super().__init__(key=key, upload_id=upload_id, location=storage.location_of(key))
        self._storage = storage
        self._full = storage._full(key)
        self._parts: list[dict[str, Any]] = []

    def _do_upload_part(self, number: int, data: bytes) -> None:
        s = self._storage
        with s._errors("upload_part", self.key):
            response = s.client.upload_part(
                Bucket=s.bucket,
                Key=self._full,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=data,
            )
        part: dict[str, Any] = {"PartNumber": number, "ETag": response["ETag"]}
        for field in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
            if field in response:
                part[field] = response[field]  # type: ignore[literal-required,unused-ignore]
        self._parts.append(part)

    def _do_complete(self) -> None:
        s = self._storage
        with s._errors("complete_multipart", self.key):
            s.client.complete_multipart_upload(
                Bucket=s.bucket,
                Key=self._full,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
            )

    def _do_abort(self) -> None:
        self._storage.abort_multipart(self.key, self.upload_id)
