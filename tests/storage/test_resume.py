"""Resuming and completing a multipart upload from its descriptor, for every backend.

What an exactly-once file sink needs after a restart: the key, the upload id and the parts
(numbers, sizes, ETags, checksums) recorded when the parts were uploaded are enough for another
process to finish the upload. Aspects covered:

* the part list round-trips through JSON; a storage opened afresh (a new process) completes the
  upload from it, and the object is the parts joined in order;
* a resumed upload takes more parts, then completes;
* ``complete_multipart`` is repeatable: True the first time; the repeat is accepted by S3
  servers (AWS, moto, SeaweedFS) and reported as False where the upload is gone (local);
  the object is untouched;
* completing an aborted upload raises :class:`MultipartUploadNotFound`, plain ``complete``
  and ``complete_multipart`` alike (the latter says the data is lost); moto answers 500
  there instead of ``NoSuchUpload``, which still raises;
* a part list S3 would refuse (numbers out of order, a small part before the last) is rejected
  before any request;
* the counting wrapper counts the resumed upload's traffic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from streamjob.storage import base, counting, errors

StorageMaker = Callable[..., base.CheckpointStorage]

MiB = 1024 * 1024


def _descriptor(upload: base.MultipartUpload) -> str:
    """What a sink stores in its checkpoint: JSON only."""
    parts = [part.to_dict() for part in upload.parts]
    return json.dumps({"key": upload.key, "upload_id": upload.upload_id, "parts": parts})


def _resume(storage: base.CheckpointStorage, descriptor: str) -> base.MultipartUpload:
    data = json.loads(descriptor)
    parts = [base.UploadedPart.from_dict(p) for p in data["parts"]]
    return storage.resume_multipart(data["key"], data["upload_id"], parts)


def _two_parts(storage: base.CheckpointStorage, key: str) -> tuple[base.MultipartUpload, bytes]:
    first, last = os.urandom(base.MIN_PART_SIZE), b"the last part is small"
    upload = storage.open_multipart(key)
    upload.upload_part(first)
    upload.upload_part(last)
    return upload, first + last


def test_another_process_completes_an_upload_from_its_descriptor(
    make_storage: StorageMaker,
) -> None:
    writer = make_storage()
    upload, data = _two_parts(writer, "sink/part-a-0-0")
    descriptor = _descriptor(upload)
    assert [p.number for p in upload.parts] == [1, 2]
    assert [p.size for p in upload.parts] == [base.MIN_PART_SIZE, 22]

    committer = make_storage()  # the restarted job: a new storage, no shared state
    resumed = _resume(committer, descriptor)
    assert resumed.state is base.UploadState.OPEN
    assert resumed.bytes_uploaded == len(data)
    resumed.complete()
    assert committer.get("sink/part-a-0-0") == data
    assert list(committer.list_multipart_uploads("sink/")) == []


def test_a_resumed_upload_takes_more_parts(make_storage: StorageMaker) -> None:
    storage = make_storage()
    first = os.urandom(base.MIN_PART_SIZE)
    upload = storage.open_multipart("resumed")
    upload.upload_part(first)
    resumed = _resume(make_storage(), _descriptor(upload))
    assert resumed.upload_part(b"tail") == 2
    resumed.complete()
    assert storage.get("resumed") == first + b"tail"


def test_complete_multipart_is_repeatable(make_storage: StorageMaker, backend: str) -> None:
    storage = make_storage()
    upload, data = _two_parts(storage, "sink/part-a-0-1")
    assert storage.complete_multipart(upload.key, upload.upload_id, upload.parts) is True
    # the commit is repeated after a restore from a checkpoint that was already committed
    again = make_storage()
    repeated = again.complete_multipart(upload.key, upload.upload_id, upload.parts)
    if backend == "local":  # S3 servers (AWS, moto, SeaweedFS) accept a repeated completion
        assert repeated is False
    assert again.get("sink/part-a-0-1") == data
    assert [o.key for o in again.list("sink/")] == ["sink/part-a-0-1"]


def test_completing_an_aborted_upload_raises(make_storage: StorageMaker, backend: str) -> None:
    storage = make_storage()
    upload = storage.open_multipart("sink/aborted")
    upload.upload_part(b"lost")
    parts = upload.parts
    storage.abort_multipart(upload.key, upload.upload_id)
    expected = errors.StorageError if backend == "moto" else base.MultipartUploadNotFound
    with pytest.raises(expected):
        storage.resume_multipart(upload.key, upload.upload_id, parts).complete()
    with pytest.raises(expected, match=None if backend == "moto" else "data is lost"):
        storage.complete_multipart(upload.key, upload.upload_id, parts)
    assert not storage.exists("sink/aborted")


def test_a_part_list_s3_would_refuse_is_rejected(storage: base.CheckpointStorage) -> None:
    upload = storage.open_multipart("bad")
    upload.upload_part(b"x")
    small = base.UploadedPart(number=1, size=10)
    with pytest.raises(errors.StorageError, match="only the last part"):
        storage.resume_multipart("bad", upload.upload_id, [small, base.UploadedPart(2, 10)])
    with pytest.raises(errors.StorageError, match="must be numbered"):
        storage.resume_multipart("bad", upload.upload_id, [base.UploadedPart(2, 10)])
    upload.abort()


def test_uploaded_part_round_trips_through_json() -> None:
    part = base.UploadedPart(3, 7, etag='"abc"', checksums=(("ChecksumCRC32", "q8v=="),))
    assert base.UploadedPart.from_dict(json.loads(json.dumps(part.to_dict()))) == part
    assert base.UploadedPart.from_dict({"number": 1, "size": 2}) == base.UploadedPart(1, 2)


def test_counting_storage_counts_a_resumed_upload(storage: base.CheckpointStorage) -> None:
    upload = storage.open_multipart("counted")
    upload.upload_part(b"12345")
    counted = counting.CountingStorage(storage)
    assert counted.complete_multipart("counted", upload.upload_id, upload.parts) is True
    assert counted.requests == {"complete_multipart": 1}
    assert counted.get("counted") == b"12345"
