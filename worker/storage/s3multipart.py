"""Multipart uploads on S3: create, upload parts, complete or abort; find and abort leftovers.

Used by :class:`streamjob.storage.s3.S3Storage` (``open_multipart``, ``resume_multipart``,
``list_multipart_uploads``, ``abort_multipart``). A resumed upload completes with the ETags
(and checksums) recorded when its parts were uploaded, possibly by another process;
``NoSuchUpload`` becomes :class:`streamjob.storage.base.MultipartUploadNotFound`. It drives
that storage's boto3 client but imports nothing of boto3: every call runs inside
``storage.translating(...)``, which turns boto3's exceptions into
:mod:`streamjob.storage.errors`. The state machine is the one of
:class:`streamjob.storage.base.MultipartUpload`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from streamjob.storage import base, errors, info, keys, s3errors

if TYPE_CHECKING:
    from streamjob.storage import s3

_PART_CHECKSUMS = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256")


def open_upload(storage: s3.S3Storage, key: str) -> S3MultipartUpload:
    """CreateMultipartUpload (with the storage's server-side encryption settings)."""
    full = storage.full_key(key)
    with storage.translating("open_multipart", key):
        response = storage.client.create_multipart_upload(
            Bucket=storage.bucket, Key=full, **storage.sse
        )
    return S3MultipartUpload(storage, key=key, upload_id=response["UploadId"])


def resume_upload(
    storage: s3.S3Storage, key: str, upload_id: str, parts: Sequence[base.UploadedPart]
) -> S3MultipartUpload:
    """The upload ``upload_id`` of ``key`` with ``parts`` already uploaded (no request sent)."""
    if not upload_id:
        raise base.MultipartUploadNotFound(
            f"cannot resume a multipart upload of {storage.location_of(key)} without its id",
            location=storage.location_of(key),
        )
    return S3MultipartUpload(storage, key=key, upload_id=upload_id, parts=parts)


def list_uploads(storage: s3.S3Storage, prefix: str) -> Iterator[info.MultipartUploadInfo]:
    """Unfinished uploads under ``prefix``, sorted by key and upload id."""
    keys.validate_prefix(prefix)
    paginator = storage.client.get_paginator("list_multipart_uploads")
    found: list[info.MultipartUploadInfo] = []
    with storage.translating("list_multipart_uploads", prefix):
        for page in paginator.paginate(Bucket=storage.bucket, Prefix=storage.root + prefix):
            found.extend(
                info.MultipartUploadInfo(
                    key=upload["Key"][len(storage.root) :],
                    upload_id=upload["UploadId"],
                    initiated=upload.get("Initiated"),
                )
                for upload in page.get("Uploads", [])
            )
    yield from sorted(found, key=lambda u: (u.key, u.upload_id))


def abort_upload(storage: s3.S3Storage, key: str, upload_id: str) -> None:
    """AbortMultipartUpload; an upload that no longer exists is not an error."""
    full = storage.full_key(key)
    try:
        with storage.translating("abort_multipart", key):
            storage.client.abort_multipart_upload(
                Bucket=storage.bucket, Key=full, UploadId=upload_id
            )
    except s3errors.S3RequestFailed as failed:
        if failed.code != "NoSuchUpload":
            raise


class S3MultipartUpload(base.MultipartUpload):
    """UploadPart per part; CompleteMultipartUpload with every part's ETag (and checksum)."""

    def __init__(
        self,
        storage: s3.S3Storage,
        *,
        key: str,
        upload_id: str,
        parts: Sequence[base.UploadedPart] = (),
    ) -> None:
        location = storage.location_of(key)
        super().__init__(key=key, upload_id=upload_id, location=location, parts=parts)
        self._storage = storage
        self._full = storage.full_key(key)

    def _do_upload_part(self, number: int, data: bytes) -> base.UploadedPart:
        storage = self._storage
        try:
            with storage.translating("upload_part", self.key):
                response = storage.client.upload_part(
                    Bucket=storage.bucket,
                    Key=self._full,
                    UploadId=self.upload_id,
                    PartNumber=number,
                    Body=data,
                )
        except s3errors.S3RequestFailed as failed:
            if failed.code == "NoSuchUpload":
                raise self._gone(failed) from failed
            raise
        # boto3 >= 1.36 sends part checksums; the server then wants them back on completion
        checksums = tuple((f, str(response[f])) for f in _PART_CHECKSUMS if f in response)  # type: ignore[literal-required]
        return base.UploadedPart(
            number=number, size=len(data), etag=response["ETag"], checksums=checksums
        )

    def _do_complete(self) -> None:
        storage = self._storage
        parts: list[dict[str, Any]] = []
        for part in self.parts:
            entry: dict[str, Any] = {"PartNumber": part.number, "ETag": part.etag}
            entry.update(part.checksums)
            parts.append(entry)
        try:
            with storage.translating("complete_multipart", self.key):
                storage.client.complete_multipart_upload(
                    Bucket=storage.bucket,
                    Key=self._full,
                    UploadId=self.upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
        except s3errors.S3RequestFailed as failed:
            if failed.code != "NoSuchUpload":
                raise
            if failed.retried and self._completed_already():
                return  # an earlier attempt completed it; its response was lost
            raise self._gone(failed) from failed

    def _completed_already(self) -> bool:
        try:
            return self._storage.size(self.key) == self.bytes_uploaded
        except errors.ObjectNotFound:
            return False

    def _gone(self, failed: s3errors.S3RequestFailed) -> base.MultipartUploadNotFound:
        return base.MultipartUploadNotFound(
            f"multipart upload {self.upload_id} of {self.location} at endpoint "
            f"{self._storage.endpoint} no longer exists (NoSuchUpload: completed or aborted, "
            f"perhaps by another process or a lifecycle rule): {failed}",
            location=self.location,
        )

    def _do_abort(self) -> None:
        abort_upload(self._storage, self.key, self.upload_id)
