"""Checkpoint storage in a local (or mounted) directory.

Implements :class:`streamjob.storage.base.CheckpointStorage` with the durable steps of
:mod:`streamjob.storage.localfs`: ``put`` writes a temp file, fsyncs, renames and fsyncs the
directory; ``put_if_absent`` hard-links the fsynced temp file into place, which fails if the key
exists, so it is atomic across processes. A key ``a/b`` is the file ``{root}/a/b``, so unlike S3
a directory cannot hold both ``a`` and ``a/b``.

Multipart uploads mimic S3: the parts of an upload of ``a/b`` live in the hidden directory
``{root}/a/.streamjob-mpu-{upload_id}-b/`` (invisible to ``list``) until ``complete`` joins them.
The directory's existence is the upload's existence, so another process can resume an upload
from its key, id and part list (``resume_multipart``); completing one whose directory is gone
raises :class:`streamjob.storage.base.MultipartUploadNotFound`, like S3's ``NoSuchUpload``.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import errno
import functools
import os
import pathlib
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO, ParamSpec, TypeVar

from streamjob.storage import base, errors, info, keys, localfs

MPU_PREFIX = f"{keys.RESERVED_PREFIX}mpu-"
_UPLOAD_ID_LENGTH = 32  # uuid4().hex

P = ParamSpec("P")
R = TypeVar("R")


def _os_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn a method's unexpected OSError into a StorageError naming the root and the fix."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except errors.StorageError:
            raise
        except PermissionError as exc:
            raise errors.StorageAccessDenied(
                f"permission denied on {exc.filename}: let the streamjob user write there "
                "or point checkpoints.dir elsewhere",
                location=str(exc.filename),
            ) from exc
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            raise errors.StorageError(
                f"{exc.filename} is in the way: a local directory cannot hold both a key 'a' "
                "and keys under 'a/'; choose keys that are not prefixes of each other",
                location=str(exc.filename),
            ) from exc
        except OSError as exc:
            fix = "free some disk space" if exc.errno == errno.ENOSPC else "check the disk"
            raise errors.StorageError(
                f"local storage operation failed on {exc.filename}: {exc.strerror}: {fix}",
                location=str(exc.filename),
            ) from exc

    return wrapper


class LocalStorage(base.CheckpointStorage):
    """Objects as files under ``root``; see the module docstring for the durability steps."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = pathlib.Path(os.path.abspath(root))

    @property
    def root(self) -> pathlib.Path:
        return self._root

    @property
    def url(self) -> str:
        return self._root.as_uri()

    def _path(self, key: str) -> pathlib.Path:
        return self._root / keys.validate_key(key)

    def _not_found(self, key: str) -> errors.ObjectNotFound:
        return errors.ObjectNotFound(
            f"no object {self.location_of(key)} (file {self._root / key} does not exist)",
            location=self.location_of(key),
            key=key,
        )

    # -- objects -------------------------------------------------------------------------------

    @_os_errors
    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temp = localfs.write_temp(path.parent, localfs.write_bytes(data))
        localfs.replace_from_temp(temp, path)

    @_os_errors
    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.exists():
            return False
        temp = localfs.write_temp(path.parent, localfs.write_bytes(data))
        return localfs.link_from_temp(temp, path)

    @_os_errors
    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> bytes:
        base.check_range(start, end)
        path = self._path(key)
        try:
            return localfs.read_range(path, start, end)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._not_found(key) from None

    @_os_errors
    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(key) from None
        if not path.is_file():
            raise self._not_found(key)
        return stat.st_size

    def list(self, prefix: str = "") -> Iterator[info.ObjectInfo]:
        keys.validate_prefix(prefix)
        dir_part, _, name_part = prefix.rpartition("/")
        start = self._root / dir_part if dir_part else self._root
        relative = f"{dir_part}/" if dir_part else ""
        for key in localfs.walk_sorted(start, relative, name_part):
            try:
                size = (self._root / key).stat().st_size
            except FileNotFoundError:
                continue  # deleted while listing
            yield info.ObjectInfo(key=key, size=size)

    @_os_errors
    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return  # a "directory" is not an object; S3 would not find it either
        localfs.fsync_dir(path.parent)
        localfs.prune_empty_dirs(path.parent, self._root)

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.delete(key)

    # -- large objects -------------------------------------------------------------------------

    @_os_errors
    def open_multipart(self, key: str) -> base.MultipartUpload:
        path = self._path(key)
        upload_id = uuid.uuid4().hex
        parts = _parts_dir(path, upload_id)
        for _attempt in range(5):  # the parent may be pruned by a concurrent delete: retry
            localfs.ensure_dir(path.parent)
            with contextlib.suppress(FileNotFoundError):
                parts.mkdir()
                break
        else:
            parts.mkdir()
        return LocalMultipartUpload(
            key=key, upload_id=upload_id, location=self.location_of(key), path=path
        )

    def list_multipart_uploads(self, prefix: str = "") -> Iterator[info.MultipartUploadInfo]:
        keys.validate_prefix(prefix)
        dir_part, _, _ = prefix.rpartition("/")
        start = self._root / dir_part if dir_part else self._root
        relative = f"{dir_part}/" if dir_part else ""
        found: builtins.list[info.MultipartUploadInfo] = []
        for directory, rel in localfs.walk_dirs(start, relative):
            with contextlib.suppress(FileNotFoundError), os.scandir(directory) as scan:
                for entry in scan:
                    upload = _parse_parts_dir(entry.name, rel)
                    if upload is None or not upload[0].startswith(prefix):
                        continue
                    mtime = entry.stat().st_mtime
                    found.append(
                        info.MultipartUploadInfo(
                            key=upload[0],
                            upload_id=upload[1],
                            initiated=datetime.datetime.fromtimestamp(mtime, tz=datetime.UTC),
                        )
                    )
        yield from sorted(found, key=lambda u: (u.key, u.upload_id))

    @_os_errors
    def abort_multipart(self, key: str, upload_id: str) -> None:
        _check_upload_id(upload_id)
        shutil.rmtree(_parts_dir(self._path(key), upload_id), ignore_errors=True)

    def resume_multipart(
        self, key: str, upload_id: str, parts: Sequence[base.UploadedPart]
    ) -> base.MultipartUpload:
        _check_upload_id(upload_id)
        return LocalMultipartUpload(
            key=key,
            upload_id=upload_id,
            location=self.location_of(key),
            path=self._path(key),
            parts=parts,
        )

    @_os_errors
    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        final = self._path(key)
        with open(path, "rb") as source:
            temp = localfs.write_temp(final.parent, localfs.copy_into(source))
        localfs.replace_from_temp(temp, final)

    @_os_errors
    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        destination = pathlib.Path(os.path.abspath(path))
        try:
            source = open(self._path(key), "rb")  # noqa: SIM115 - closed below
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise self._not_found(key) from None
        with source:
            temp = localfs.write_temp(destination.parent, localfs.copy_into(source))
        localfs.replace_from_temp(temp, destination)

    # -- structure -----------------------------------------------------------------------------

    def child(self, prefix: str) -> LocalStorage:
        return LocalStorage(self._root / keys.child_prefix(prefix))

    def check_access(self) -> tuple[str, ...]:
        try:
            localfs.ensure_dir(self._root)
        except OSError as exc:
            raise errors.StorageAccessDenied(
                f"cannot create checkpoint directory {self._root}: {exc.strerror}: create it, "
                "let the streamjob user write there, or fix checkpoints.dir",
                location=self.url,
            ) from exc
        if not os.access(self._root, os.W_OK | os.X_OK):
            raise errors.StorageAccessDenied(
                f"checkpoint directory {self._root} is not writable: let the streamjob user "
                "write there or fix checkpoints.dir",
                location=self.url,
            )
        return (f"directory {self._root} is writable",)


class LocalMultipartUpload(base.MultipartUpload):
    """Parts as numbered files in a hidden directory beside the destination."""

    def __init__(
        self,
        *,
        key: str,
        upload_id: str,
        location: str,
        path: pathlib.Path,
        parts: Sequence[base.UploadedPart] = (),
    ) -> None:
        super().__init__(key=key, upload_id=upload_id, location=location, parts=parts)
        self._path = path
        self._dir = _parts_dir(path, upload_id)

    def _part(self, number: int) -> pathlib.Path:
        return self._dir / f"part-{number:05d}"

    def _gone(self) -> base.MultipartUploadNotFound:
        return base.MultipartUploadNotFound(
            f"multipart upload {self.upload_id} of {self.location} no longer exists (completed "
            "or aborted, perhaps by another process): start the upload again",
            location=self.location,
        )

    @_os_errors
    def _do_upload_part(self, number: int, data: bytes) -> base.UploadedPart:
        if not self._dir.is_dir():
            raise self._gone()
        with open(self._part(number), "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return base.UploadedPart(number=number, size=len(data))

    @_os_errors
    def _do_complete(self) -> None:
        if not self._dir.is_dir():
            raise self._gone()
        for part in self.parts:  # a resumed upload: the files must be what the caller saw
            try:
                size = self._part(part.number).stat().st_size
            except FileNotFoundError:
                raise self._gone() from None  # aborted while we looked
            if size != part.size:
                raise errors.StorageError(
                    f"multipart upload {self.upload_id} of {self.location}: part "
                    f"{part.number} has {size} bytes on disk but {part.size} were uploaded: "
                    "the parts directory was changed by someone else",
                    location=self.location,
                )

        def fill(out: BinaryIO) -> None:
            for part in self.parts:
                with open(self._part(part.number), "rb") as source:
                    shutil.copyfileobj(source, out, length=1024 * 1024)

        temp = localfs.write_temp(self._path.parent, fill)
        localfs.replace_from_temp(temp, self._path)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _do_abort(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def _check_upload_id(upload_id: str) -> None:
    if len(upload_id) != _UPLOAD_ID_LENGTH or not upload_id.isalnum():
        raise errors.InvalidKey(f"not a local multipart upload id: {upload_id!r}")


def _parts_dir(path: pathlib.Path, upload_id: str) -> pathlib.Path:
    return path.parent / f"{MPU_PREFIX}{upload_id}-{path.name}"


def _parse_parts_dir(name: str, relative: str) -> tuple[str, str] | None:
    """``(key, upload_id)`` if ``name`` is a parts directory, else None."""
    if not name.startswith(MPU_PREFIX):
        return None
    rest = name[len(MPU_PREFIX) :]
    upload_id, dash, basename = rest[:_UPLOAD_ID_LENGTH], rest[_UPLOAD_ID_LENGTH:][:1], rest[33:]
    if dash != "-" or not basename:
        return None
    return f"{relative}{basename}", upload_id
