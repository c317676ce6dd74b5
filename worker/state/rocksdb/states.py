"""Building the RocksDB backend's state objects for a descriptor.

Single-value states (value, reducing, aggregating, with or without TTL) are the hashmap
backend's classes (:mod:`streamjob.state.hashmap_states`, :mod:`streamjob.state.hashmap_ttl`)
running on a :class:`~streamjob.state.rocksdb.cache.SingleValueStore`: its per-key-group caches
take the place of a ``StateTable``'s dicts, so both backends share one set of semantics.
ListState and MapState are :mod:`streamjob.state.rocksdb.collections`, with pending writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from streamjob import clock as clock_mod
from streamjob.state import api, descriptors, hashmap_states, hashmap_table, hashmap_ttl
from streamjob.state.rocksdb import cache, collections
from streamjob.state.rocksdb import db as db_mod

if TYPE_CHECKING:
    from streamjob.state import backend as backend_mod

Store = cache.SingleValueStore | cache.PendingWrites
"""Where a state's unwritten changes wait: a value cache, or a list's or map's raw writes."""


def create(
    backend: backend_mod.KeyedStateBackend,
    descriptor: descriptors.StateDescriptor,
    *,
    column: db_mod.Column,
    database: db_mod.StateDB,
    prefixes: dict[int, bytes],
    limit: int,
    clock: clock_mod.Clock,
    next_sequence: Callable[[int], int],
) -> tuple[api.State, Store]:
    """The state object for ``descriptor`` on ``column``, and its store."""
    if isinstance(descriptor, descriptors.ListStateDescriptor | descriptors.MapStateDescriptor):
        pending = cache.PendingWrites(column, limit)
        common = collections.Common(
            name=descriptor.name,
            database=database,
            pending=pending,
            prefixes=prefixes,
            serializer=descriptor.serializer,
            ttl_config=descriptor.ttl_config,
            clock=clock,
            next_sequence=next_sequence,
        )
        if isinstance(descriptor, descriptors.MapStateDescriptor):
            return collections.RocksDBMapState(backend, common, descriptor.key_serializer), pending
        return collections.RocksDBListState(backend, common), pending
    store = cache.SingleValueStore(
        column=column,
        codec=cache.ValueCodec(descriptor.serializer, with_ttl=descriptor.ttl_config is not None),
        prefixes=prefixes,
        key_group_range=backend.key_group_range,
        max_parallelism=backend.max_parallelism,
        limit=limit,
    )
    table = hashmap_table.StateTable(
        descriptor,
        max_parallelism=backend.max_parallelism,
        key_group_range=backend.key_group_range,
    )
    table.tables = store.tables
    table.ns_tables = store.ns_tables
    if descriptor.ttl_config is None:
        return hashmap_states.create(backend, table), store
    return hashmap_ttl.create(backend, table, clock), store
