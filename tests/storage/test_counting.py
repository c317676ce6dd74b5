"""CountingStorage: bytes and requests, exactly, thread-safely, for every backend.

Aspects covered:

* bytes written by put, put_if_absent, multipart parts and put_file; bytes read by (ranged)
  get and get_file; one request counted per operation kind;
* a ranged read counts only the bytes of the range (what the rescale tests rely on);
* children share the parent's counters; ``reset`` returns and zeroes them;
* counts stay exact under 16 concurrent threads;
* the wrapper is a full CheckpointStorage: the contract's probe runs through it.
"""

from __future__ import annotations

import concurrent.futures
import pathlib

from streamjob.storage import base, counting


def test_counts_bytes_and_requests(storage: base.CheckpointStorage, tmp_path: pathlib.Path) -> None:
    counted = counting.CountingStorage(storage)
    counted.put("a", b"12345")
    counted.put_if_absent("b", b"123")
    assert counted.get("a") == b"12345"
    assert counted.get("a", start=1, end=3) == b"23"
    counted.size("a")
    list(counted.list())
    counted.delete("b")
    with counted.open_multipart("big") as upload:
        upload.upload_part(b"x" * 10)
        upload.complete()
    source = tmp_path / "f"
    source.write_bytes(b"y" * 100)
    counted.put_file("f", source)
    counted.get_file("f", tmp_path / "g")
    snapshot = counted.snapshot()
    assert snapshot.bytes_written == 5 + 3 + 10 + 100
    assert snapshot.bytes_read == 5 + 2 + 100
    assert dict(snapshot.requests) == {
        "put": 1,
        "put_if_absent": 1,
        "get": 2,
        "size": 1,
        "list": 1,
        "delete": 1,
        "open_multipart": 1,
        "upload_part": 1,
        "complete_multipart": 1,
        "put_file": 1,
        "get_file": 1,
    }
    assert snapshot.total_requests == 12


def test_children_share_counters_and_reset_zeroes(storage: base.CheckpointStorage) -> None:
    counted = counting.CountingStorage(storage)
    job = counted.child("job-1")
    job.put("chk-1/_metadata", b"abc")
    assert counted.get("job-1/chk-1/_metadata") == b"abc"
    before = counted.reset()
    assert (before.bytes_written, before.bytes_read) == (3, 3)
    assert counted.snapshot() == counting.StorageCounters(0, 0, {})
    assert counted.bytes_read == counted.bytes_written == 0


def test_counts_stay_exact_under_threads(storage: base.CheckpointStorage) -> None:
    counted = counting.CountingStorage(storage)
    counted.put("shared", b"z" * 7)
    counted.reset()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: counted.get("shared"), range(200)))
    assert counted.bytes_read == 200 * 7
    assert counted.requests == {"get": 200}


def test_the_probe_runs_through_the_wrapper(storage: base.CheckpointStorage) -> None:
    counted = counting.CountingStorage(storage)
    assert counted.probe().put_if_absent_safe
    assert counted.requests["check_access"] == 1
    assert counted.requests["put_if_absent"] > 2
    assert counted.describe() == storage.describe()
