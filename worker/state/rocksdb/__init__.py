"""``streamjob.state.rocksdb``: keyed state in RocksDB (rocksdict, raw-bytes mode).

Re-exports only. The backend is :class:`RocksDBStateBackend`; its tuning is
:class:`RocksDBOptions`. rocksdict is imported by :mod:`streamjob.state.rocksdb.db` alone.
"""

from streamjob.state.rocksdb.backend import RocksDBStateBackend
from streamjob.state.rocksdb.native import NativeCheckpoint, NativeSource
from streamjob.state.rocksdb.options import RocksDBOptions

__all__ = ["NativeCheckpoint", "NativeSource", "RocksDBOptions", "RocksDBStateBackend"]
