"""Durable filesystem steps for :mod:`streamjob.storage.local`: temp files, fsync, links, walks.

Every write goes to a temp file in the destination's directory (named with
:data:`keys.RESERVED_PREFIX`, so listings never show it), is fsynced, then renamed (replace) or
hard-linked (create-only) into place, and the directory is fsynced. Directories are created on
demand and pruned when emptied by a delete; the two can race, so creation retries.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import BinaryIO

from streamjob.storage import keys

TEMP_PREFIX = f"{keys.RESERVED_PREFIX}tmp-"
Filler = Callable[[BinaryIO], None]
"""Writes an object's content into an open temp file."""
_CREATE_ATTEMPTS = 5


def fsync_dir(directory: pathlib.Path) -> None:
    """Make a rename, link or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(directory: pathlib.Path, fill: Filler) -> pathlib.Path:
    """Create ``directory`` if needed, write a fsynced temp file in it with ``fill``."""
    for attempt in range(_CREATE_ATTEMPTS):
        ensure_dir(directory)
        temp = directory / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with open(temp, "xb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
        except FileNotFoundError:
            # a concurrent delete pruned the directory between makedirs and open: retry
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
            continue
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return temp
    raise AssertionError("unreachable")


def replace_from_temp(temp: pathlib.Path, final: pathlib.Path) -> None:
    """Rename ``temp`` over ``final`` and fsync the directory."""
    try:
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(final.parent)


def link_from_temp(temp: pathlib.Path, final: pathlib.Path) -> bool:
    """Hard-link ``temp`` to ``final`` unless it exists (atomic across processes)."""
    try:
        os.link(temp, final)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    fsync_dir(final.parent)
    return True


def ensure_dir(directory: pathlib.Path) -> None:
    """Create ``directory`` and missing parents, fsyncing each parent that gained an entry."""
    if directory.is_dir():
        return
    missing: list[pathlib.Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            if not new.is_dir():
                raise
            continue  # a concurrent writer made it
        fsync_dir(new.parent)


def write_bytes(data: bytes) -> Filler:
    def fill(out: BinaryIO) -> None:
        out.write(data)

    return fill


def copy_into(source: BinaryIO) -> Filler:
    def fill(out: BinaryIO) -> None:
        shutil.copyfileobj(source, out, length=1024 * 1024)

    return fill


def prune_empty_dirs(directory: pathlib.Path, root: pathlib.Path) -> None:
    """Remove ``directory`` and its parents while empty, never ``root`` itself."""
    current = directory
    while current != root and root in current.parents:
        try:
            current.rmdir()
        except OSError:
            return  # not empty (or gone, or recreated by a writer): stop
        current = current.parent


def read_range(path: pathlib.Path, start: int | None, end: int | None) -> bytes:
    with open(path, "rb") as source:
        offset = start or 0
        if offset:
            source.seek(offset)
        if end is None:
            return source.read()
        return source.read(max(0, end - offset))


def walk_sorted(directory: pathlib.Path, relative: str, name_prefix: str) -> Iterator[str]:
    """Keys of the files under ``directory`` whose name starts with ``name_prefix``, sorted.

    Entries are ordered by name, with ``/`` appended to directories: then every key below a
    directory sorts exactly where the directory's ``name/`` does, so the walk is sorted by full
    key (the order S3 lists in) without collecting everything first.
    """
    try:
        with os.scandir(directory) as scan:
            entries = [
                (e.name + "/" if e.is_dir() else e.name, e.is_dir())
                for e in scan
                if e.name.startswith(name_prefix) and not e.name.startswith(keys.RESERVED_PREFIX)
            ]
    except (FileNotFoundError, NotADirectoryError):
        return
    for sort_name, is_dir in sorted(entries):
        if is_dir:
            name = sort_name[:-1]
            yield from walk_sorted(directory / name, f"{relative}{name}/", "")
        else:
            yield f"{relative}{sort_name}"


def walk_dirs(directory: pathlib.Path, relative: str) -> Iterator[tuple[pathlib.Path, str]]:
    """Every directory below and including ``directory`` with its key prefix (hidden skipped)."""
    yield directory, relative
    try:
        with os.scandir(directory) as scan:
            names = sorted(
                e.name for e in scan if e.is_dir() and not e.name.startswith(keys.RESERVED_PREFIX)
            )
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        yield from walk_dirs(directory / name, f"{relative}{name}/")
