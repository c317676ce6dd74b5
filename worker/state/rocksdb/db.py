"""The only module that talks to rocksdict: a RocksDB database in raw-bytes mode.

:class:`StateDB` opens (or creates) a database whose column families hold the states of one
backend, and offers what the backend needs and nothing more: point reads, write batches,
bounded range scans, range deletes, RocksDB checkpoints (hard links of the live SST files,
after a memtable flush), SST writing and ingestion. Writes skip the write-ahead log: the local
database is disposable, a failure restores from the last completed checkpoint.

rocksdict keeps a database open while any of its column-family objects, handles or iterators
is alive, so :meth:`StateDB.close` closes every column family it handed out, and scans are
generators that end with their range. Neighbours: :mod:`streamjob.state.rocksdb.options` (the
settings), :mod:`streamjob.state.rocksdb.backend` (the user).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import rocksdict

from streamjob.state.rocksdb import options as options_mod

DEFAULT_COLUMN = "default"

_COMPRESSION = {
    "none": rocksdict.DBCompressionType.none,
    "snappy": rocksdict.DBCompressionType.snappy,
    "lz4": rocksdict.DBCompressionType.lz4,
    "lz4hc": rocksdict.DBCompressionType.lz4hc,
    "zstd": rocksdict.DBCompressionType.zstd,
    "zlib": rocksdict.DBCompressionType.zlib,
}


class Column:
    """One column family: ``get(key) -> bytes | None`` is the bound point read."""

    __slots__ = ("get", "handle", "name", "rdict")

    def __init__(self, name: str, rdict: rocksdict.Rdict, handle: rocksdict.ColumnFamily) -> None:
        self.name = name
        self.rdict: Any = rdict
        self.handle: Any = handle
        self.get: Callable[[bytes], bytes | None] = rdict.get

    def _release(self) -> None:
        """Drop the references that keep the database open (rocksdict counts them)."""
        self.rdict = self.handle = None
        self.get = _closed


class Batch:
    """Writes applied atomically, in order, by :meth:`StateDB.write`."""

    __slots__ = ("_batch",)

    def __init__(self) -> None:
        self._batch = rocksdict.WriteBatch(raw_mode=True)

    def put(self, column: Column, key: bytes, value: bytes) -> None:
        self._batch.put(key, value, column.handle)

    def delete(self, column: Column, key: bytes) -> None:
        self._batch.delete(key, column.handle)

    def delete_range(self, column: Column, lower: bytes, upper: bytes) -> None:
        self._batch.delete_range(lower, upper, column.handle)

    def __len__(self) -> int:
        return self._batch.len()

    def size_in_bytes(self) -> int:
        return self._batch.size_in_bytes()


class StateDB:
    """A RocksDB database of column families under ``path`` (created when missing)."""

    def __init__(self, path: str, settings: options_mod.RocksDBOptions) -> None:
        self.path = path
        self._settings = settings
        self._cache = rocksdict.Cache(settings.block_cache_bytes)
        self._write_options = rocksdict.WriteOptions()
        self._write_options.disable_wal = True  # type: ignore[method-assign,assignment]
        existing = (
            rocksdict.Rdict.list_cf(path, self._options())
            if os.path.exists(os.path.join(path, "CURRENT"))
            else [DEFAULT_COLUMN]
        )
        families = {name: self._options() for name in existing if name != DEFAULT_COLUMN}
        self._db: rocksdict.Rdict | None = rocksdict.Rdict(
            path, self._options(), column_families=families or None
        )
        self._db.set_write_options(self._write_options)
        self.columns: dict[str, Column] = {}
        self.default = self._column(DEFAULT_COLUMN, self._db)
        for name in families:
            self._column(name, self._db.get_column_family(name))

    def _options(self) -> rocksdict.Options:
        s = self._settings
        opts = rocksdict.Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        table = rocksdict.BlockBasedOptions()
        table.set_block_cache(self._cache)
        table.set_bloom_filter(s.bloom_bits_per_key, False)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        opts.set_block_based_table_factory(table)
        opts.set_write_buffer_size(s.write_buffer_bytes)
        opts.set_max_write_buffer_number(s.max_write_buffers)
        opts.set_db_write_buffer_size(s.total_write_buffer_bytes)
        opts.set_compression_type(_COMPRESSION[s.compression]())
        opts.set_bottommost_compression_type(_COMPRESSION[s.bottommost_compression]())
        opts.set_target_file_size_base(s.target_file_bytes)
        opts.set_level_compaction_dynamic_level_bytes(True)
        opts.set_max_background_jobs(s.background_jobs)
        opts.set_max_open_files(s.max_open_files)
        opts.set_keep_log_file_num(2)
        opts.set_max_log_file_size(4 * options_mod.MIB)
        return opts

    def _live(self) -> rocksdict.Rdict:
        if self._db is None:
            raise RuntimeError(f"the RocksDB database at {self.path} is closed")
        return self._db

    def _column(self, name: str, rdict: rocksdict.Rdict) -> Column:
        rdict.set_write_options(self._write_options)
        column = Column(name, rdict, self._live().get_column_family_handle(name))
        self.columns[name] = column
        return column

    # -- column families ---------------------------------------------------------------------

    def column(self, name: str) -> Column:
        """The column family ``name``, created when missing."""
        column = self.columns.get(name)
        if column is None:
            column = self._column(name, self._live().create_column_family(name, self._options()))
        return column

    def drop_column(self, name: str) -> None:
        column = self.columns.pop(name)
        column.rdict.close()
        column._release()
        self._live().drop_column_family(name)

    # -- reads and writes --------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        if len(batch):
            self._live().write(batch._batch, self._write_options)

    def scan(self, column: Column, lower: bytes, upper: bytes) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` for ``lower <= key < upper``, in key order."""
        read = rocksdict.ReadOptions()
        read.set_iterate_upper_bound(upper)
        yield from column.rdict.items(from_key=lower, read_opt=read)

    def scan_keys(self, column: Column, lower: bytes, upper: bytes) -> Iterator[bytes]:
        read = rocksdict.ReadOptions()
        read.set_iterate_upper_bound(upper)
        yield from column.rdict.keys(from_key=lower, read_opt=read)

    def any_in(self, column: Column, lower: bytes, upper: bytes) -> bool:
        return next(self.scan_keys(column, lower, upper), None) is not None

    def delete_range(self, column: Column, lower: bytes, upper: bytes) -> None:
        column.rdict.delete_range(lower, upper, self._write_options)

    def ingest(self, column: Column, paths: list[str]) -> None:
        """Ingest SST files written by :func:`write_sst` (moved into the database)."""
        if paths:
            ingest = rocksdict.IngestExternalFileOptions()
            ingest.set_move_files(True)
            column.rdict.ingest_external_file(paths, ingest)

    def checkpoint(self, path: str) -> None:
        """A RocksDB checkpoint in ``path`` (must not exist): memtables are flushed first, SST
        files are hard links, so this is cheap and the database goes on changing meanwhile."""
        rocksdict.Checkpoint(self._live()).create_checkpoint(path)

    def size_estimate(self) -> int:
        """Live SST data plus memtables, over every column family."""
        total = 0
        for column in list(self.columns.values()):
            for name in ("rocksdb.estimate-live-data-size", "rocksdb.cur-size-all-mem-tables"):
                total += column.rdict.property_int_value(name) or 0
        return total

    def close(self) -> None:
        """Close the database; every :class:`Column` handed out stops working."""
        if self._db is None:
            return
        for column in self.columns.values():
            if column.rdict is not self._db:
                column.rdict.close()
            column._release()
        self.columns.clear()
        self._db.close()
        self._db = None


def _closed(key: bytes) -> bytes | None:
    raise RuntimeError("the RocksDB database was closed (the backend was disposed)")


def new_batch() -> Batch:
    return Batch()


def write_sst(path: str, items: Iterable[tuple[bytes, bytes]]) -> bool:
    """Write ``items`` (sorted by key, unique) into a new SST file; False if there were none."""
    writer = rocksdict.SstFileWriter(rocksdict.Options(raw_mode=True))
    writer.open(path)
    count = 0
    for key, value in items:
        writer[key] = value
        count += 1
    if count == 0:
        del writer
        if os.path.exists(path):
            os.remove(path)
        return False
    writer.finish()
    return True
