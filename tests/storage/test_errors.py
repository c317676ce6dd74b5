"""Errors for people: each names the endpoint, bucket (or directory) and key, and the fix.

Aspects covered:

* a missing bucket (moto, SeaweedFS): probe and every operation raise BucketNotFound naming
  bucket and endpoint and suggesting ``aws s3 mb``; SeaweedFS does not create it on upload;
* wrong credentials (SeaweedFS: unknown access key, wrong secret): StorageAccessDenied naming
  endpoint and access key id, telling which variables to set;
* no credentials at all: StorageAccessDenied saying how to provide them;
* an unreachable endpoint: StorageUnreachable naming the endpoint and what to check;
* local: a file where the directory should be, keys that are prefixes of each other;
* responses the storage cannot handle: a rejected checksum names the checksum settings, an
  overloaded server the retry settings, a denial the permissions needed.
"""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Callable

import pytest

from streamjob.storage import base, errors, local, options, s3, s3errors, seaweedfs

StorageMaker = Callable[..., base.CheckpointStorage]
s3_backends = pytest.mark.parametrize(
    "backend", [pytest.param("moto"), pytest.param("seaweedfs", marks=pytest.mark.seaweedfs)]
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@s3_backends
def test_a_missing_bucket_is_named_with_the_fix(make_storage: StorageMaker) -> None:
    storage = make_storage(bucket="no-such-bucket")
    assert isinstance(storage, s3.S3Storage)
    operations: list[Callable[[], object]] = [
        storage.probe,
        lambda: storage.put("chk-1/_metadata", b"x"),
        lambda: storage.put_if_absent("chk-1/_metadata", b"x"),
        lambda: storage.get("chk-1/_metadata"),
        lambda: storage.size("chk-1/_metadata"),
        lambda: storage.exists("chk-1/_metadata"),
        lambda: list(storage.list()),
        lambda: storage.open_multipart("big"),
    ]
    for operation in operations:
        with pytest.raises(errors.BucketNotFound) as caught:
            operation()
        message = str(caught.value)
        assert "bucket 'no-such-bucket' does not exist" in message
        assert storage.endpoint in message
        assert "aws s3 mb s3://no-such-bucket" in message
        assert "checkpoints.dir" in message


@pytest.mark.seaweedfs
@pytest.mark.parametrize(
    ("access_key_id", "secret", "code"),
    [("streamjob", "wrong-secret", "SignatureDoesNotMatch"), ("nobody", "x", "InvalidAccessKeyId")],
)
def test_wrong_credentials_are_named_with_the_fix(
    seaweedfs_server: seaweedfs.SeaweedFSServer, access_key_id: str, secret: str, code: str
) -> None:
    opts = options.S3Options(
        endpoint_url=seaweedfs_server.endpoint_url,
        path_style=True,
        access_key_id=access_key_id,
        secret_access_key=secret,
        max_attempts=1,
    )
    with s3.S3Storage("streamjob-test", "creds", opts) as storage:
        for operation in (storage.probe, lambda: storage.put("k", b"x"), storage.check_access):
            with pytest.raises(errors.StorageAccessDenied) as caught:
                operation()
            message = str(caught.value)
            assert code in message
            assert seaweedfs_server.endpoint_url in message
            assert f"access key id {access_key_id}" in message
            assert "AWS_ACCESS_KEY_ID" in message


def test_missing_credentials_say_how_to_provide_them(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    opts = options.S3Options(endpoint_url=moto_endpoint, path_style=True, max_attempts=1)
    storage = s3.S3Storage("streamjob-test", "", opts)
    with storage, pytest.raises(errors.StorageAccessDenied) as caught:
        storage.probe()
    assert "no credentials found" in str(caught.value)
    assert moto_endpoint in str(caught.value)
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)


def test_an_unreachable_endpoint_is_named_with_what_to_check() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    opts = options.S3Options(
        endpoint_url=endpoint,
        path_style=True,
        access_key_id="k",
        secret_access_key="s",
        max_attempts=1,
        connect_timeout=2,
    )
    with s3.S3Storage("checkpoints", "job", opts) as storage:
        for operation in (storage.probe, lambda: storage.get("chk-1/_metadata")):
            with pytest.raises(errors.StorageUnreachable) as caught:
                operation()
            message = str(caught.value)
            assert f"cannot reach S3 endpoint {endpoint}" in message
            assert "bucket 'checkpoints'" in message
            assert "AWS_ENDPOINT_URL" in message


def test_local_directory_blocked_by_a_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "checkpoints").write_text("not a directory")
    storage = local.LocalStorage(tmp_path / "checkpoints")
    with pytest.raises(errors.StorageError) as caught:
        storage.probe()
    assert str(tmp_path / "checkpoints") in str(caught.value)
    assert "checkpoints.dir" in str(caught.value)
    with pytest.raises(errors.StorageError, match="in the way"):
        storage.put("chk-1/_metadata", b"x")


def test_local_keys_that_are_prefixes_of_each_other(tmp_path: pathlib.Path) -> None:
    storage = local.LocalStorage(tmp_path)
    storage.put("a", b"file")
    with pytest.raises(errors.StorageError, match="cannot hold both"):
        storage.put("a/b", b"x")


def test_messages_for_responses_the_storage_cannot_handle() -> None:
    where = s3errors.Where(
        endpoint="http://minio:9000", bucket="ckpt", location="s3://ckpt/job/chk-1/_metadata"
    )
    refused = s3errors.from_response(
        where,
        operation="put",
        code="InvalidArgument",
        status=400,
        message="x-amz-checksum-crc32 header is not supported",
        key="chk-1/_metadata",
    )
    assert "request_checksum_calculation='when_required'" in str(refused)
    assert "AWS_REQUEST_CHECKSUM_CALCULATION=when_required" in str(refused)
    overloaded = s3errors.from_response(
        where, operation="get", code="SlowDown", status=503, message="", key="k"
    )
    assert "AWS_MAX_ATTEMPTS" in str(overloaded)
    assert "http://minio:9000" in str(overloaded)
    denied = s3errors.from_response(
        where, operation="put", code="AccessDenied", status=403, message="", key="k"
    )
    assert isinstance(denied, errors.StorageAccessDenied)
    assert "s3:PutObject" in str(denied) and "bucket 'ckpt'" in str(denied)
