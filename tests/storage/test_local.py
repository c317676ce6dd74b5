"""What only the local implementation has to get right: durable, atomic, tidy files.

Aspects covered:

* ``put`` goes through a temp file, fsync and rename: the file and its directory are fsynced
  (and so is every parent that gained a new directory), and a failed write leaves neither a
  partial object nor a temp file behind;
* ``put_if_absent`` links the fsynced temp file into place and never overwrites, even when the
  key appears between the check and the link;
* deleting the last object of a "directory" prunes the empty directories, never the root;
* multipart parts live in a hidden directory beside the destination, invisible to ``list``;
* keys must stay under the root.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from streamjob.storage import errors, keys, local, localfs


@pytest.fixture
def storage(tmp_path: pathlib.Path) -> local.LocalStorage:
    return local.LocalStorage(tmp_path / "root")


def _files(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_fsyncs_file_and_directory(
    storage: local.LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def record_fsync(fd: int) -> None:
        synced.append("file")
        real_fsync(fd)

    def record_dir(directory: pathlib.Path) -> None:
        synced.append(f"dir:{directory.name}")  # (the real one would call os.fsync too)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(localfs, "fsync_dir", record_dir)
    storage.put("chk-1/_metadata", b"m")
    assert synced == ["dir:" + storage.root.parent.name, "dir:root", "file", "dir:chk-1"]
    synced.clear()
    storage.put("chk-1/_metadata", b"m2")
    assert synced == ["file", "dir:chk-1"]


def test_a_failed_write_leaves_nothing_behind(
    storage: local.LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.put("chk-1/_metadata", b"old")

    def broken_replace(*_: object) -> None:
        raise OSError(28, "No space left on device", "chk-1/_metadata")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(errors.StorageError, match="free some disk space"):
        storage.put("chk-1/_metadata", b"new")
    monkeypatch.undo()
    assert storage.get("chk-1/_metadata") == b"old"
    assert _files(storage.root) == ["chk-1/_metadata"]  # no temp file left


def test_put_if_absent_never_overwrites_a_key_that_appears_late(
    storage: local.LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_temp = localfs.write_temp

    def late_rival(directory: pathlib.Path, fill: localfs.Filler) -> pathlib.Path:
        temp = real_write_temp(directory, fill)
        (directory / "_metadata").write_bytes(b"rival")  # another process wins meanwhile
        return temp

    monkeypatch.setattr(localfs, "write_temp", late_rival)
    assert storage.put_if_absent("chk-1/_metadata", b"mine") is False
    monkeypatch.undo()
    assert storage.get("chk-1/_metadata") == b"rival"
    assert _files(storage.root) == ["chk-1/_metadata"]


def test_delete_prunes_empty_directories_but_not_the_root(storage: local.LocalStorage) -> None:
    storage.put("job/chk-1/op/state", b"s")
    storage.put("job/shared/sst", b"s")
    storage.delete("job/chk-1/op/state")
    assert not (storage.root / "job" / "chk-1").exists()
    assert (storage.root / "job" / "shared").is_dir()
    storage.delete("job/shared/sst")
    assert storage.root.is_dir()
    assert list(storage.root.iterdir()) == []


def test_multipart_parts_are_hidden_beside_the_destination(storage: local.LocalStorage) -> None:
    upload = storage.open_multipart("sink/part-0")
    upload.upload_part(b"data")
    hidden = [p.name for p in (storage.root / "sink").iterdir()]
    assert len(hidden) == 1 and hidden[0].startswith(keys.RESERVED_PREFIX)
    assert list(storage.list()) == []
    assert [u.key for u in storage.list_multipart_uploads("sink/part")] == ["sink/part-0"]
    upload.complete()
    assert [o.key for o in storage.list()] == ["sink/part-0"]
    assert [p.name for p in (storage.root / "sink").iterdir()] == ["part-0"]


def test_an_unknown_upload_id_is_refused(storage: local.LocalStorage) -> None:
    with pytest.raises(errors.InvalidKey):
        storage.abort_multipart("sink/part-0", "../../etc")


def test_keys_stay_under_the_root(storage: local.LocalStorage, tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.InvalidKey):
        storage.put("../outside", b"x")
    assert not (tmp_path / "outside").exists()
