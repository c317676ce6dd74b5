"""Multipart uploads and big listings, for every backend.

Aspects covered:

* a 50 MB object uploaded in parts, read back whole and by ranges across part boundaries;
* nothing is visible under the key until ``complete``; ``complete`` replaces an old object;
* the state machine: calls after complete/abort raise, abort twice is fine, leaving a ``with``
  block without completing aborts;
* S3's minimum part size is enforced for every part but the last, on every backend;
* a restarted writer finds leftover uploads (``list_multipart_uploads``) and aborts them;
* ``put_file`` of a 50 MB file goes through the transfer manager in parts;
* listing pages past 1,000 keys and stays sorted.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
from collections.abc import Callable

import pytest

from streamjob.storage import base, errors

StorageMaker = Callable[..., base.CheckpointStorage]

MiB = 1024 * 1024


def _payload(size: int) -> bytes:
    block = os.urandom(MiB)
    return (block * (size // MiB + 1))[:size]


def test_a_50_mb_object_in_parts(storage: base.CheckpointStorage) -> None:
    data = _payload(50 * MiB)
    part = 8 * MiB
    with storage.open_multipart("chk-1/big.bin") as upload:
        for offset in range(0, len(data), part):
            upload.upload_part(data[offset : offset + part])
        assert not storage.exists("chk-1/big.bin")  # invisible until complete
        upload.complete()
    assert upload.part_count == 7
    assert storage.size("chk-1/big.bin") == len(data)
    assert storage.get("chk-1/big.bin") == data
    # a range across the boundary between parts 1 and 2
    assert (
        storage.get("chk-1/big.bin", start=part - 10, end=part + 10) == data[part - 10 : part + 10]
    )
    assert storage.get("chk-1/big.bin", start=len(data) - 3) == data[-3:]
    assert list(storage.list_multipart_uploads()) == []


def test_complete_replaces_an_existing_object(storage: base.CheckpointStorage) -> None:
    storage.put("part-0", b"old")
    with storage.open_multipart("part-0") as upload:
        upload.upload_part(b"new")
        upload.complete()
    assert storage.get("part-0") == b"new"
    assert [o.key for o in storage.list()] == ["part-0"]


def test_the_upload_state_machine_rejects_misuse(storage: base.CheckpointStorage) -> None:
    upload = storage.open_multipart("a")
    upload.upload_part(b"x")
    upload.complete()
    assert upload.state is base.UploadState.COMPLETED
    with pytest.raises(errors.StorageError, match="already completed"):
        upload.upload_part(b"y")
    with pytest.raises(errors.StorageError, match="already completed"):
        upload.abort()
    second = storage.open_multipart("b")
    second.abort()
    second.abort()
    assert second.state is base.UploadState.ABORTED
    with pytest.raises(errors.StorageError, match="already aborted"):
        second.complete()
    assert not storage.exists("b")


def test_leaving_the_block_without_complete_aborts(storage: base.CheckpointStorage) -> None:
    uploads: list[base.MultipartUpload] = []

    def crashing_writer() -> None:
        with storage.open_multipart("c") as upload:
            uploads.append(upload)
            upload.upload_part(b"x")
            raise RuntimeError("writer crashed")

    with pytest.raises(RuntimeError):
        crashing_writer()
    upload = uploads[0]
    assert upload.state is base.UploadState.ABORTED
    assert not storage.exists("c")
    assert list(storage.list_multipart_uploads()) == []


def test_only_the_last_part_may_be_small(storage: base.CheckpointStorage) -> None:
    with storage.open_multipart("d") as upload:
        upload.upload_part(b"small")
        with pytest.raises(errors.StorageError, match="only the last part"):
            upload.upload_part(b"more")


def test_leftover_uploads_are_found_and_aborted(storage: base.CheckpointStorage) -> None:
    first = storage.open_multipart("sink/part-0-0.inprogress")
    first.upload_part(b"pending data")
    second = storage.open_multipart("sink/part-1-0.inprogress")
    other = storage.open_multipart("elsewhere/x")
    # the writer "crashes": a restored sink lists what its predecessor left behind
    leftovers = list(storage.list_multipart_uploads("sink/"))
    assert [(u.key, u.upload_id) for u in leftovers] == sorted(
        [(first.key, first.upload_id), (second.key, second.upload_id)]
    )
    assert [o.key for o in storage.list()] == []  # parts are never listed as objects
    for upload in leftovers:
        storage.abort_multipart(upload.key, upload.upload_id)
    storage.abort_multipart(first.key, first.upload_id)  # aborting twice is fine
    assert [u.key for u in storage.list_multipart_uploads()] == ["elsewhere/x"]
    other.abort()
    assert list(storage.list_multipart_uploads()) == []


def test_put_file_of_50_mb_uses_parts(
    make_storage: StorageMaker, tmp_path: pathlib.Path, backend: str
) -> None:
    storage = make_storage(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    source = tmp_path / "big.sst"
    source.write_bytes(_payload(50 * MiB))
    storage.put_file("shared/big.sst", source)
    target = tmp_path / "back.sst"
    storage.get_file("shared/big.sst", target)
    assert target.read_bytes() == source.read_bytes()
    etag = next(iter(storage.list("shared/"))).etag
    if backend != "local":
        assert etag is not None and etag.strip('"').endswith("-7")  # 7 parts of 8 MiB


def test_listing_pages_past_1000_keys(storage: base.CheckpointStorage) -> None:
    names = [f"shared/{n:05d}.sst" for n in range(1_050)] + ["shared-other", "chk-1/_metadata"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda name: storage.put(name, b"s"), names))
    listed = [o.key for o in storage.list("shared/")]
    assert listed == sorted(n for n in names if n.startswith("shared/"))
    assert len(list(storage.list())) == len(names)
    storage.delete_many(n for n in names if n.startswith("shared/"))  # > 1,000: two batches
    assert [o.key for o in storage.list()] == ["chk-1/_metadata", "shared-other"]
