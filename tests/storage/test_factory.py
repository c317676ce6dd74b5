"""Opening storage from URLs, and S3 options from code and environment variables.

Aspects covered:

* ``s3://bucket/prefix``, ``file:///abs/path`` and plain paths; bad URLs say what to write;
* options from environment variables (endpoint, region, path style, checksum mode, retries,
  multipart size and concurrency, server-side encryption), with clear errors for bad values;
* the options reach the boto3 client: checksum mode ``when_required``, addressing style, retry
  mode and attempts, timeouts, transfer sizes;
* server-side encryption headers are sent (moto reports them back);
* an S3 storage opened from the environment works end to end against moto;
* both checksum modes work end to end on every backend (single PUTs, multipart, transfers).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from streamjob.storage import base, errors, factory, local, options, s3

MiB = 1024 * 1024


def test_plain_paths_and_file_urls_open_local_storage(tmp_path: pathlib.Path) -> None:
    for url in (str(tmp_path / "a"), (tmp_path / "a").as_uri(), f"file://{tmp_path}/a/"):
        storage = factory.open_storage(url)
        assert isinstance(storage, local.LocalStorage)
        assert storage.root == tmp_path / "a"
    assert factory.open_storage("relative/dir").url.endswith("/relative/dir")


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://checkpoints", "checkpoints", ""),
        ("s3://checkpoints/", "checkpoints", ""),
        ("s3://checkpoints/team-a/jobs/", "checkpoints", "team-a/jobs"),
        ("S3://my.bucket-1/x", "my.bucket-1", "x"),
    ],
)
def test_s3_urls(url: str, bucket: str, prefix: str) -> None:
    assert factory.parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("s3://", "not an S3 URL"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://bucket/x?region=eu", "S3Options"),
        ("gs://bucket/x", "scheme 'gs'"),
        ("file://host/path", "three slashes"),
        ("", "empty storage URL"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, hint: str) -> None:
    with pytest.raises(errors.StorageConfigError, match=hint):
        factory.open_storage(url)


def test_options_from_environment() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        "AWS_REGION": "eu-west-1",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        "AWS_RETRY_MODE": "adaptive",
        "AWS_MAX_ATTEMPTS": "7",
        "STREAMJOB_S3_MULTIPART_THRESHOLD": "32MiB",
        "STREAMJOB_S3_MULTIPART_CHUNKSIZE": "8mb",
        "STREAMJOB_S3_MAX_CONCURRENCY": "4",
        "STREAMJOB_S3_SSE": "aws:kms",
        "STREAMJOB_S3_SSE_KMS_KEY_ID": "alias/checkpoints",
    }
    opts = options.S3Options.from_env(env)
    assert opts.endpoint_url == "http://127.0.0.1:8333"
    assert opts.region == "eu-west-1"
    assert opts.path_style is True  # default with a custom endpoint
    assert opts.request_checksum_calculation == "when_required"
    assert opts.response_checksum_validation == "when_required"
    assert (opts.retry_mode, opts.max_attempts) == ("adaptive", 7)
    assert (opts.multipart_threshold, opts.multipart_chunksize) == (32 * MiB, 8 * MiB)
    assert opts.max_concurrency == 4
    assert (opts.sse, opts.sse_kms_key_id) == ("aws:kms", "alias/checkpoints")
    assert options.S3Options.from_env({"STREAMJOB_S3_PATH_STYLE": "false"}).path_style is False
    assert options.S3Options.from_env({}) == options.S3Options()


@pytest.mark.parametrize(
    ("env", "hint"),
    [
        ({"AWS_REQUEST_CHECKSUM_CALCULATION": "never"}, "when_supported, when_required"),
        ({"STREAMJOB_S3_PATH_STYLE": "maybe"}, "true or false"),
        ({"AWS_MAX_ATTEMPTS": "many"}, "whole number"),
        ({"STREAMJOB_S3_MULTIPART_CHUNKSIZE": "1MiB"}, "at least 5 MiB"),
        ({"STREAMJOB_S3_MULTIPART_CHUNKSIZE": "lots"}, "write e.g. 16MiB"),
        ({"STREAMJOB_S3_SSE": "rot13"}, "AES256, aws:kms"),
    ],
)
def test_bad_environment_values_are_named(env: dict[str, str], hint: str) -> None:
    with pytest.raises(errors.StorageConfigError, match=hint):
        options.S3Options.from_env(env)


def test_half_given_credentials_are_refused() -> None:
    with pytest.raises(errors.StorageConfigError, match="both access_key_id and secret"):
        options.S3Options(access_key_id="only-the-id")


def test_options_reach_the_boto3_client() -> None:
    opts = options.S3Options(
        endpoint_url="http://127.0.0.1:1",
        path_style=True,
        access_key_id="k",
        secret_access_key="s",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retry_mode="adaptive",
        max_attempts=9,
        connect_timeout=3,
        read_timeout=30,
        multipart_chunksize=8 * MiB,
        multipart_threshold=16 * MiB,
        max_concurrency=3,
    )
    with s3.S3Storage("bucket", "p", opts) as storage:
        config: Any = storage.client.meta.config  # the stubs do not know these attributes
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"
        assert config.s3 is not None and config.s3["addressing_style"] == "path"
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 9}
        assert (config.connect_timeout, config.read_timeout) == (3, 30)
        assert storage.endpoint == "http://127.0.0.1:1"
        assert storage.describe() == "s3://bucket/p at endpoint http://127.0.0.1:1"


def test_server_side_encryption_is_requested(moto_endpoint: str) -> None:
    opts = options.S3Options(
        endpoint_url=moto_endpoint,
        path_style=True,
        access_key_id="k",
        secret_access_key="s",
        sse="AES256",
    )
    with s3.S3Storage("streamjob-test", "sse", opts) as storage:
        storage.put("encrypted", b"secret state")
        storage.put_if_absent("encrypted-2", b"secret state")
        for key in ("sse/encrypted", "sse/encrypted-2"):
            head = storage.client.head_object(Bucket="streamjob-test", Key=key)
            assert head["ServerSideEncryption"] == "AES256"
        storage.delete_prefix("")


def test_open_storage_from_the_environment(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    with factory.open_storage("s3://streamjob-test/from-env/job") as storage:
        assert isinstance(storage, s3.S3Storage)
        config: Any = storage.client.meta.config
        assert config.request_checksum_calculation == "when_required"
        storage.put("chk-1/_metadata", b"m")
        assert [o.key for o in storage.list()] == ["chk-1/_metadata"]
        assert storage.url == "s3://streamjob-test/from-env/job"
        storage.delete_prefix("")


@pytest.mark.parametrize("mode", ["when_required", "when_supported"])
def test_both_checksum_modes_work_end_to_end(
    make_storage: Callable[..., base.CheckpointStorage], tmp_path: pathlib.Path, mode: str
) -> None:
    storage = make_storage(request_checksum_calculation=mode, response_checksum_validation=mode)
    storage.put("a", b"abc")
    assert storage.put_if_absent("b", b"b")
    assert storage.get("a", start=1) == b"bc"
    with storage.open_multipart("m") as upload:
        upload.upload_part(b"x" * (5 * MiB))
        upload.upload_part(b"y")
        upload.complete()
    assert storage.size("m") == 5 * MiB + 1
    source = tmp_path / "f"
    source.write_bytes(b"z" * (9 * MiB))
    storage.put_file("f", source)
    storage.delete_many(["a", "b", "m", "f"])
    assert list(storage.list()) == []
