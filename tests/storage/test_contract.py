"""The storage contract, run against a local directory, moto and a real SeaweedFS.

Aspects covered, each for every backend:

* put / get round trip, overwrite, empty objects, binary data;
* get of a missing key raises ObjectNotFound naming the full location;
* ranged reads: start only, end only, both, past the end, empty ranges, invalid ranges;
* size and exists;
* list: sorted by key (``a-b`` before ``a/b``), string-prefix semantics, empty results,
  internal files (temp files, multipart parts) never listed;
* delete (missing key is fine), delete_many, delete_prefix;
* put_if_absent: True once, then False, content untouched;
* child storages and join; keys that would escape the root are rejected;
* put_file / get_file.
"""

from __future__ import annotations

import pathlib

import pytest

from streamjob.storage import base, errors


def test_put_then_get_returns_the_same_bytes(storage: base.CheckpointStorage) -> None:
    payload = bytes(range(256)) * 10
    storage.put("chk-1/_metadata", payload)
    assert storage.get("chk-1/_metadata") == payload


def test_put_overwrites_and_empty_objects_exist(storage: base.CheckpointStorage) -> None:
    storage.put("k", b"old")
    storage.put("k", b"new")
    storage.put("empty", b"")
    assert storage.get("k") == b"new"
    assert storage.get("empty") == b""
    assert storage.size("empty") == 0
    assert storage.exists("empty")


def test_get_of_a_missing_key_names_the_full_location(storage: base.CheckpointStorage) -> None:
    with pytest.raises(errors.ObjectNotFound) as caught:
        storage.get("chk-9/_metadata")
    assert caught.value.key == "chk-9/_metadata"
    assert storage.location_of("chk-9/_metadata") in str(caught.value)
    assert isinstance(caught.value, KeyError)  # callers may treat it like a missing mapping key


def test_size_and_exists(storage: base.CheckpointStorage) -> None:
    storage.put("a/b", b"12345")
    assert storage.size("a/b") == 5
    assert storage.exists("a/b")
    assert not storage.exists("a/c")
    assert not storage.exists("a")  # a "directory" is not an object
    with pytest.raises(errors.ObjectNotFound):
        storage.size("a/c")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, b"0123456789"),
        (3, None, b"3456789"),
        (None, 4, b"0123"),
        (2, 5, b"234"),
        (0, 10, b"0123456789"),
        (8, 100, b"89"),  # cut short at the end, like slicing
        (10, None, b""),  # starts at the end
        (25, None, b""),  # starts past the end
        (4, 4, b""),  # empty range
        (9, 10, b"9"),
    ],
)
def test_ranged_reads_follow_slicing(
    storage: base.CheckpointStorage, start: int | None, end: int | None, expected: bytes
) -> None:
    storage.put("ranged", b"0123456789")
    assert storage.get("ranged", start=start, end=end) == expected


def test_invalid_ranges_are_rejected(storage: base.CheckpointStorage) -> None:
    storage.put("ranged", b"0123456789")
    with pytest.raises(ValueError, match="before start"):
        storage.get("ranged", start=5, end=2)
    with pytest.raises(ValueError, match="negative"):
        storage.get("ranged", start=-1)


def test_an_empty_range_of_a_missing_object_still_fails(storage: base.CheckpointStorage) -> None:
    with pytest.raises(errors.ObjectNotFound):
        storage.get("missing", start=3, end=3)


def test_list_is_sorted_by_full_key(storage: base.CheckpointStorage) -> None:
    names = ["a/b", "a-b", "a0", "a/a/z", "b", "a/b0", "_metadata", "A"]
    for name in names:
        storage.put(name, name.encode())
    listed = list(storage.list())
    assert [o.key for o in listed] == sorted(names)
    assert {o.key: o.size for o in listed} == {n: len(n) for n in names}


def test_list_uses_string_prefixes(storage: base.CheckpointStorage) -> None:
    for name in [
        "chk-1/_metadata",
        "chk-1/op-0",
        "chk-10/_metadata",
        "chk-2/_metadata",
        "shared/x",
    ]:
        storage.put(name, b"x")
    assert [o.key for o in storage.list("chk-1/")] == ["chk-1/_metadata", "chk-1/op-0"]
    assert [o.key for o in storage.list("chk-1")] == [
        "chk-1/_metadata",
        "chk-1/op-0",
        "chk-10/_metadata",
    ]
    assert [o.key for o in storage.list("chk-1/op")] == ["chk-1/op-0"]
    assert list(storage.list("nothing/")) == []
    assert list(storage.list("chk-3/")) == []


def test_list_of_an_empty_storage_is_empty(storage: base.CheckpointStorage) -> None:
    assert list(storage.list()) == []


def test_delete_is_idempotent(storage: base.CheckpointStorage) -> None:
    storage.put("chk-1/x", b"x")
    storage.delete("chk-1/x")
    storage.delete("chk-1/x")
    storage.delete("never-written")
    assert not storage.exists("chk-1/x")
    assert list(storage.list()) == []


def test_delete_many_and_delete_prefix(storage: base.CheckpointStorage) -> None:
    for n in range(5):
        storage.put(f"chk-1/f{n}", b"x")
        storage.put(f"chk-2/f{n}", b"x")
    storage.delete_many(["chk-1/f0", "chk-1/f1", "chk-1/missing"])
    assert [o.key for o in storage.list("chk-1/")] == ["chk-1/f2", "chk-1/f3", "chk-1/f4"]
    assert storage.delete_prefix("chk-2/") == 5
    assert [o.key for o in storage.list()] == ["chk-1/f2", "chk-1/f3", "chk-1/f4"]
    storage.delete_many([])


def test_put_if_absent_writes_once(storage: base.CheckpointStorage) -> None:
    assert storage.put_if_absent("chk-1/_metadata", b"first") is True
    assert storage.put_if_absent("chk-1/_metadata", b"second") is False
    assert storage.get("chk-1/_metadata") == b"first"
    storage.delete("chk-1/_metadata")
    assert storage.put_if_absent("chk-1/_metadata", b"third") is True
    assert storage.get("chk-1/_metadata") == b"third"


def test_child_storage_is_rooted_deeper(storage: base.CheckpointStorage) -> None:
    job = storage.child("job-7")
    job.put(base.join("chk-1", "_metadata"), b"m")
    deeper = job.child("chk-1/")
    assert deeper.get("_metadata") == b"m"
    assert storage.get("job-7/chk-1/_metadata") == b"m"
    assert [o.key for o in job.list()] == ["chk-1/_metadata"]
    assert job.url.rstrip("/").endswith("job-7")
    assert job.location_of("x").endswith("job-7/x")


@pytest.mark.parametrize(
    "key", ["", "/abs", "../escape", "a/../../b", "a//b", "a/./b", "a/", ".streamjob-tmp-x"]
)
def test_keys_that_escape_the_root_or_are_malformed_are_rejected(
    storage: base.CheckpointStorage, key: str
) -> None:
    with pytest.raises(errors.InvalidKey):
        storage.put(key, b"x")
    with pytest.raises(errors.InvalidKey):
        storage.get(key)


def test_child_prefix_may_not_escape(storage: base.CheckpointStorage) -> None:
    with pytest.raises(errors.InvalidKey):
        storage.child("../other-job")


def test_put_file_and_get_file(storage: base.CheckpointStorage, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "state.sst"
    source.write_bytes(b"sst" * 100_000)
    storage.put_file("shared/000001.sst", source)
    target = tmp_path / "restored" / "000001.sst"
    target.parent.mkdir()
    storage.get_file("shared/000001.sst", target)
    assert target.read_bytes() == source.read_bytes()
    assert storage.size("shared/000001.sst") == 300_000
    with pytest.raises(errors.ObjectNotFound):
        storage.get_file("shared/missing.sst", tmp_path / "missing")


def test_describe_names_the_location(storage: base.CheckpointStorage) -> None:
    assert storage.url in storage.describe()
    assert storage.url in repr(storage)
