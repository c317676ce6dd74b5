"""Tuning of the RocksDB backend: memory, compression and the write-back cache, as plain data.

A TaskManager pod has a memory limit, so every figure is bounded and the defaults are modest:
per backend (one keyed operator subtask) a 64 MiB block cache shared by its column families
(index and filter blocks are charged to it, so it is the bound on read memory), memtables of
16 MiB per column family capped at 64 MiB per database (``db_write_buffer_size``), and a
write-back cache of 100,000 entries per state (about 20 MiB of small Python values; it counts
entries, not bytes, so lower ``cache_entries`` for large values: 100,000 values of 1 KiB are
100 MiB). LZ4 compression, ZSTD for the bottommost level. Roughly 150 MiB per backend with small
values, plus the OS page cache.

Settings come from the job configuration with Flink's names
(``env.config.job_config["state.backend.rocksdb.block.cache-size"] = "256mb"``);
:mod:`streamjob.state.rocksdb.db` turns them into rocksdict options. No rocksdict import here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

MIB = 1024 * 1024
COMPRESSIONS = ("none", "snappy", "lz4", "lz4hc", "zstd", "zlib")

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}


@dataclasses.dataclass(frozen=True)
class RocksDBOptions:
    """Options of one RocksDB backend; see the module docstring for what the defaults cost."""

    #: block cache (decompressed data, index and filter blocks), shared by all column families
    block_cache_bytes: int = 64 * MIB
    #: one memtable of one column family
    write_buffer_bytes: int = 16 * MIB
    #: memtables per column family (one active, the others being flushed)
    max_write_buffers: int = 2
    #: all memtables of the database together (a write-buffer manager enforces it)
    total_write_buffer_bytes: int = 64 * MIB
    compression: str = "lz4"
    bottommost_compression: str = "zstd"
    #: target size of an SST file (and so the unit of incremental uploads)
    target_file_bytes: int = 64 * MIB
    background_jobs: int = 2
    max_open_files: int = 512
    bloom_bits_per_key: int = 10
    #: entries (keys with their values) the write-back cache holds per state before it writes
    #: its changes as one WriteBatch and drops the cached values
    cache_entries: int = 100_000

    def __post_init__(self) -> None:
        for name in ("compression", "bottommost_compression"):
            value = getattr(self, name)
            if value not in COMPRESSIONS:
                raise ValueError(
                    f"RocksDB {name} {value!r} is not one of {', '.join(COMPRESSIONS)}"
                )
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int) and value < 0:
                raise ValueError(f"RocksDB option {field.name} must not be negative, got {value}")
        if self.cache_entries < 1:
            raise ValueError("the RocksDB write-back cache needs room for at least one entry")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RocksDBOptions:
        """Options from job-configuration keys with Flink's names (unknown keys are ignored)."""
        values: dict[str, Any] = {}
        for key, (field, parse) in _CONFIG_KEYS.items():
            if key in config:
                try:
                    values[field] = parse(config[key])
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{key}: {exc}") from exc
        return cls(**values)


def parse_size(value: Any) -> int:
    """``67108864``, ``"64mb"``, ``"64MiB"`` or ``"1g"`` -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a size (e.g. 64mb, 1g or a number of bytes)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


_CONFIG_KEYS: dict[str, tuple[str, Any]] = {
    "state.backend.rocksdb.block.cache-size": ("block_cache_bytes", parse_size),
    "state.backend.rocksdb.writebuffer.size": ("write_buffer_bytes", parse_size),
    "state.backend.rocksdb.writebuffer.count": ("max_write_buffers", int),
    "state.backend.rocksdb.memory.write-buffer-total": ("total_write_buffer_bytes", parse_size),
    "state.backend.rocksdb.compression": ("compression", str),
    "state.backend.rocksdb.compaction.level.target-file-size-base": (
        "target_file_bytes",
        parse_size,
    ),
    "state.backend.rocksdb.thread.num": ("background_jobs", int),
    "state.backend.rocksdb.files.open": ("max_open_files", int),
    "state.backend.rocksdb.write-cache.entries": ("cache_entries", int),
}
