"""The start-up probe: access checks and whether put-if-absent is really honoured.

Aspects covered:

* every backend (local, moto, SeaweedFS 4.x) honours put-if-absent, sequentially and racing,
  and the probe says so; its keys are cleaned up;
* a server that ignores ``If-None-Match: *`` (moto with the header stripped on the wire, and a
  test double at the storage boundary) is detected: ``put_if_absent_safe`` is False, the notes
  say why, and ``require_put_if_absent`` raises naming the location and the way out;
* a server that checks before it writes (not atomic) passes the sequential check but fails the
  race, and is reported unsafe;
* a server that answers 501 to the conditional header is reported with its endpoint.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pytest

from streamjob.storage import base, counting, errors, info, s3

StorageMaker = Callable[..., base.CheckpointStorage]


def test_every_backend_honours_put_if_absent(storage: base.CheckpointStorage) -> None:
    capabilities = storage.probe()
    assert capabilities.put_if_absent_safe, capabilities.notes
    assert capabilities.put_if_absent_sequential and capabilities.put_if_absent_concurrent
    assert capabilities.location == storage.describe()
    capabilities.require_put_if_absent()
    assert any("exactly one won" in note for note in capabilities.notes)
    assert list(storage.list()) == []  # the probe's keys are gone


class IgnoresPutIfAbsent(counting.CountingStorage):
    """A server that answers every conditional write with success and overwrites."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self.inner.put(key, data)
        return True


class ChecksThenWrites(counting.CountingStorage):
    """A server that checks for the key, then writes: right alone, wrong under a race."""

    def __init__(self, inner: base.CheckpointStorage) -> None:
        super().__init__(inner)
        self._window = threading.Barrier(2, timeout=5)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if self.inner.exists(key):
            return False
        if "race" in key:
            with contextlib.suppress(threading.BrokenBarrierError):
                self._window.wait()  # hold the window open until a second writer checked too
        self.inner.put(key, data)
        return True


def test_the_probe_detects_a_server_that_overwrites(storage: base.CheckpointStorage) -> None:
    capabilities = IgnoresPutIfAbsent(storage).probe()
    assert not capabilities.put_if_absent_safe
    assert not capabilities.put_if_absent_sequential
    assert any("ignores 'If-None-Match: *'" in note for note in capabilities.notes)
    with pytest.raises(errors.PutIfAbsentUnsupported) as caught:
        capabilities.require_put_if_absent()
    assert storage.describe() in str(caught.value)
    assert "opt out" in str(caught.value)


def test_the_probe_detects_a_check_then_write_server(storage: base.CheckpointStorage) -> None:
    capabilities = ChecksThenWrites(storage).probe()
    assert capabilities.put_if_absent_sequential
    assert not capabilities.put_if_absent_concurrent
    assert not capabilities.put_if_absent_safe
    assert any("concurrent put-if-absent writers" in note for note in capabilities.notes)


@pytest.fixture
def header_stripping(moto_endpoint: str) -> Iterator[Callable[[s3.S3Storage], None]]:
    """Make moto behave like a server that ignores If-None-Match: drop it before signing."""

    def strip(request: Any, **_: Any) -> None:
        if "If-None-Match" in request.headers:
            del request.headers["If-None-Match"]

    clients: list[Any] = []

    def install(storage: s3.S3Storage) -> None:
        storage.client.meta.events.register("before-sign.s3.PutObject", strip)
        clients.append(storage.client)

    yield install
    for client in clients:
        client.meta.events.unregister("before-sign.s3.PutObject", strip)


@pytest.mark.parametrize("backend", ["moto"])
def test_the_probe_detects_it_over_the_wire(
    storage: base.CheckpointStorage, header_stripping: Callable[[s3.S3Storage], None]
) -> None:
    assert isinstance(storage, s3.S3Storage)
    header_stripping(storage)
    assert storage.put_if_absent("k", b"1") is True
    assert storage.put_if_absent("k", b"2") is True  # what such a server tells a client
    capabilities = storage.probe()
    assert not capabilities.put_if_absent_safe
    assert storage.endpoint in capabilities.location


@pytest.mark.parametrize("backend", ["moto"])
def test_a_server_refusing_the_header_is_named(storage: base.CheckpointStorage) -> None:
    assert isinstance(storage, s3.S3Storage)

    def refuse(request: Any, **_: Any) -> None:
        if "If-None-Match" in request.headers:  # what a server without conditional PUT answers
            response: Any = {
                "Error": {"Code": "NotImplemented", "Message": "header not implemented"},
                "ResponseMetadata": {"HTTPStatusCode": 501},
            }
            raise botocore.exceptions.ClientError(response, "PutObject")

    storage.client.meta.events.register("before-sign.s3.PutObject", refuse)
    with pytest.raises(errors.PutIfAbsentUnsupported) as caught:
        storage.put_if_absent("chk-1/_metadata", b"x")
    assert storage.endpoint in str(caught.value)
    assert "If-None-Match" in str(caught.value)


def test_capabilities_are_plain_data() -> None:
    capabilities = info.StorageCapabilities(
        location="s3://b at endpoint http://x",
        put_if_absent_safe=False,
        put_if_absent_sequential=False,
        put_if_absent_concurrent=False,
        notes=("put-if-absent of an existing key overwrote it",),
    )
    with pytest.raises(errors.PutIfAbsentUnsupported, match="overwrote it"):
        capabilities.require_put_if_absent(purpose="the exactly-once file sink")
