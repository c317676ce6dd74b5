"""Native RocksDB snapshots: checkpoints of the database files, and restores from them.

Taking one (at a barrier, after the write-back cache was written): a RocksDB checkpoint in a
fresh local directory — memtables flushed, live SST files hard-linked, the small MANIFEST,
CURRENT and OPTIONS files copied. SST files never change once written, so the checkpoint layer
uploads only those it has not uploaded before (incremental checkpoints).

Restoring (DESIGN.md section 6), from the downloaded directories of every old subtask whose
key groups intersect this backend's:

1. the directory with the largest overlap becomes this backend's database as it is;
2. ``delete_range`` removes, in every state's column family, the key groups outside this
   backend's range;
3. from each other directory, the owned key-group range of every column family is scanned into
   a new SST file (``SstFileWriter``) and ingested. Checkpoint SST files are never ingested as
   they are: they overlap across levels and hold tombstones;
4. the catalogs (state meta info, list sequence numbers) are merged.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from streamjob import errors, keygroups
from streamjob.state.rocksdb import catalog, layout
from streamjob.state.rocksdb import db as db_mod
from streamjob.state.rocksdb import options as options_mod

FORMAT = "rocksdb"
"""The native format's name in checkpoint metadata."""

_SST_NAMES = itertools.count()


@dataclass(frozen=True)
class NativeCheckpoint:
    """A RocksDB checkpoint of one backend in a local directory: ``files`` are (name, size)."""

    directory: str
    files: tuple[tuple[str, int], ...]
    key_group_range: keygroups.KeyGroupRange

    @property
    def shared(self) -> tuple[tuple[str, int], ...]:
        """The SST files: immutable, so later checkpoints may reuse an upload of them."""
        return tuple(f for f in self.files if f[0].endswith(".sst"))

    @property
    def private(self) -> tuple[tuple[str, int], ...]:
        """The others (MANIFEST, CURRENT, OPTIONS...): this checkpoint's own."""
        return tuple(f for f in self.files if not f[0].endswith(".sst"))

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class NativeSource:
    """A downloaded native checkpoint of an old subtask, to restore from."""

    directory: str
    key_group_range: keygroups.KeyGroupRange


def take(
    database: db_mod.StateDB, directory: str, kg_range: keygroups.KeyGroupRange
) -> NativeCheckpoint:
    if os.path.exists(directory):
        shutil.rmtree(directory)
    database.checkpoint(directory)
    files = tuple(
        (name, os.path.getsize(os.path.join(directory, name)))
        for name in sorted(os.listdir(directory))
        if os.path.isfile(os.path.join(directory, name))
    )
    return NativeCheckpoint(directory, files, kg_range)


def choose_base(sources: Sequence[NativeSource], own: keygroups.KeyGroupRange) -> int:
    """The index of the source with the largest overlap with ``own`` (the first on a tie)."""
    overlaps = [len(s.key_group_range.intersection(own)) for s in sources]
    return overlaps.index(max(overlaps))


def _state_columns(database: db_mod.StateDB) -> list[db_mod.Column]:
    return [
        column
        for name, column in sorted(database.columns.items())
        if name.startswith(catalog.COLUMN_PREFIX)
    ]


def clip(
    database: db_mod.StateDB,
    *,
    kept: keygroups.KeyGroupRange,
    had: keygroups.KeyGroupRange,
    max_parallelism: int,
) -> None:
    """Delete the key groups of ``had`` outside ``kept`` from every state's column family."""
    width = layout.key_group_width(max_parallelism)
    ranges = []
    if had.start < kept.start:
        ranges.append((had.start, kept.start))
    if had.end > kept.end:
        ranges.append((kept.end + 1, had.end + 1))
    for column in _state_columns(database):
        for start, end in ranges:
            database.delete_range(
                column, layout.key_group_prefix(start, width), layout.key_group_prefix(end, width)
            )


def merge(
    database: db_mod.StateDB,
    sources: Sequence[NativeSource],
    *,
    base: int,
    own: keygroups.KeyGroupRange,
    max_parallelism: int,
    settings: options_mod.RocksDBOptions,
    scratch: str,
) -> int:
    """Steps 2 to 4 on ``database``, opened from ``sources[base]``; returns the next list
    sequence number of all sources (the caller's catalog is reloaded afterwards)."""
    clip(database, kept=own, had=sources[base].key_group_range, max_parallelism=max_parallelism)
    sequence = 0
    for index, source in enumerate(sources):
        if index == base or not len(source.key_group_range.intersection(own)):
            continue
        sequence = max(
            sequence,
            ingest_from(
                database,
                source,
                own=own,
                max_parallelism=max_parallelism,
                settings=settings,
                scratch=scratch,
            ),
        )
        shutil.rmtree(source.directory, ignore_errors=True)
    return sequence


def ingest_from(
    database: db_mod.StateDB,
    source: NativeSource,
    *,
    own: keygroups.KeyGroupRange,
    max_parallelism: int,
    settings: options_mod.RocksDBOptions,
    scratch: str,
) -> int:
    """Bring the key groups of ``own`` held by ``source`` into ``database`` through new SST
    files; returns the source's next list sequence number."""
    wanted = own.intersection(source.key_group_range)
    width = layout.key_group_width(max_parallelism)
    lower = layout.key_group_prefix(wanted.start, width)
    upper = layout.key_group_prefix(wanted.end + 1, width)
    other = db_mod.StateDB(source.directory, settings)
    try:
        infos, next_sequence = catalog.load(other)
        known, _ = catalog.load(database)
        batch = db_mod.new_batch()
        for name, info in sorted(infos.items()):
            mine = known.get(name)
            if mine is None:
                catalog.put_meta(batch, database, info)
            elif mine.kind is not info.kind or mine.value_serializer != info.value_serializer:
                raise errors.StateError(
                    f"the checkpoint is inconsistent: state {name!r} is stored as "
                    f"{mine.to_dict()} by one subtask and {info.to_dict()} by another"
                )
            column_name = catalog.column_name(name)
            source_column = other.columns.get(column_name)
            if source_column is None or not len(wanted):
                continue
            sst = os.path.join(scratch, f"ingest-{next(_SST_NAMES)}.sst")
            if db_mod.write_sst(sst, other.scan(source_column, lower, upper)):
                database.ingest(database.column(column_name), [sst])
        database.write(batch)
        return next_sequence
    finally:
        other.close()
