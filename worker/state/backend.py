"""``KeyedStateBackend``: the interface every keyed state backend implements.

One backend per keyed operator subtask holds the state of the key groups in its
``key_group_range``. Implementations: :mod:`streamjob.state.hashmap` (dicts), and RocksDB later;
both pass ``tests/state/test_backend_contract.py``. Snapshots use the canonical per-key-group
format of :mod:`streamjob.state.canonical`, so either backend restores the other's state, at any
parallelism.

Hot-path contract: the runtime sets the current key with two plain attribute stores per record,
``backend.current_key = key; backend.current_key_group = kg`` (``kg`` computed once by the
partitioner, inside ``key_group_range``). Both are slots, never properties; state objects read
them at each access. :meth:`set_current_key` does the same with a computed, checked key group,
for code off the hot path.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from streamjob import errors, keygroups
from streamjob.state import api, descriptors, meta

V = TypeVar("V")
K = TypeVar("K")
IN = TypeVar("IN")
ACC = TypeVar("ACC")
OUT = TypeVar("OUT")
S = TypeVar("S", bound=api.State)


class KeyedStateBackend(abc.ABC):
    """Keyed state of one operator subtask, partitioned by key group."""

    __slots__ = ("current_key", "current_key_group", "key_group_range", "max_parallelism")

    current_key: Any
    current_key_group: int | None

    def __init__(self, *, max_parallelism: int, key_group_range: keygroups.KeyGroupRange) -> None:
        keygroups.check_parallelism(1, max_parallelism)
        if len(key_group_range) and not (
            key_group_range.start >= 0 and key_group_range.end < max_parallelism
        ):
            raise ValueError(
                f"key group range {key_group_range.to_list()} is outside "
                f"[0, {max_parallelism - 1}] for max_parallelism {max_parallelism}"
            )
        self.max_parallelism = max_parallelism
        self.key_group_range = key_group_range
        self.current_key = None
        self.current_key_group = None

    def set_current_key(self, key: Any) -> None:
        """Set the current key, computing its key group (off the hot path; checks the range)."""
        kg = keygroups.assign_to_key_group(key, self.max_parallelism)
        if kg not in self.key_group_range:
            raise errors.StateError(
                f"key {key!r} is in key group {kg}, outside this backend's key groups "
                f"{self.key_group_range.to_list()}: the record was routed to the wrong subtask"
            )
        self.current_key = key
        self.current_key_group = kg

    # -- states -------------------------------------------------------------------------------

    @overload
    def get_state(self, descriptor: descriptors.ValueStateDescriptor[V]) -> api.ValueState[V]: ...

    @overload
    def get_state(self, descriptor: descriptors.ListStateDescriptor[V]) -> api.ListState[V]: ...

    @overload
    def get_state(self, descriptor: descriptors.MapStateDescriptor[K, V]) -> api.MapState[K, V]: ...

    @overload
    def get_state(
        self, descriptor: descriptors.ReducingStateDescriptor[V]
    ) -> api.ReducingState[V]: ...

    @overload
    def get_state(
        self, descriptor: descriptors.AggregatingStateDescriptor[IN, ACC, OUT]
    ) -> api.AggregatingState[IN, OUT]: ...

    def get_state(self, descriptor: descriptors.StateDescriptor) -> api.State:
        """The state object for ``descriptor``, created on first use, then the same object.

        Registering a name again with another kind, serializer or TTL raises
        :class:`errors.StateError` naming both registrations.
        """
        return self._get_state(descriptor)

    @abc.abstractmethod
    def _get_state(self, descriptor: descriptors.StateDescriptor) -> api.State: ...

    @abc.abstractmethod
    def get_keys(self, state_name: str, namespace: api.Namespace) -> Iterator[Any]:
        """Keys with state under ``state_name`` in ``namespace`` (a copy: state may change)."""

    @abc.abstractmethod
    def _keys_with_groups(self, state_name: str, namespace: Any) -> Iterable[tuple[int, Any]]:
        """(key group, key) of every key with state under ``state_name`` in ``namespace``
        (a copy: ``apply_to_all_keys``' function may change state)."""

    def apply_to_all_keys(
        self,
        namespace: api.Namespace,
        descriptor: descriptors.StateDescriptor,
        function: Callable[[Any, Any], None],
    ) -> None:
        """Call ``function(key, state)`` for each key with state in ``namespace``, with that
        key current and the state scoped to ``namespace``; the previous key and namespace are
        restored afterwards."""
        state: Any = self._get_state(descriptor)
        previous = (self.current_key, self.current_key_group, state.get_current_namespace())
        state.set_current_namespace(namespace)
        try:
            for kg, key in self._keys_with_groups(descriptor.name, namespace):
                self.current_key = key
                self.current_key_group = kg
                function(key, state)
        finally:
            self.current_key, self.current_key_group, ns = previous
            state.set_current_namespace(ns)

    # -- snapshots ----------------------------------------------------------------------------

    @abc.abstractmethod
    def snapshot_key_group(self, key_group: int) -> bytes:
        """All states of ``key_group`` in the canonical format."""

    def iter_snapshot(self, key_groups: Iterable[int]) -> Iterator[tuple[int, bytes]]:
        """``(kg, blob)`` per key group, lazily, so the caller can interleave other work."""
        for kg in key_groups:
            yield kg, self.snapshot_key_group(kg)

    @abc.abstractmethod
    def restore_key_group(self, key_group: int, data: bytes) -> None:
        """Load one canonical blob (from any backend, any parallelism) for a key group this
        backend owns; raises :class:`errors.StateError` for a key group outside its range."""

    @abc.abstractmethod
    def state_metadata(self) -> list[meta.StateMetaInfo]:
        """Meta info of every state: registered ones, and restored ones not registered yet."""

    @abc.abstractmethod
    def check_compatible(self, restored: Sequence[meta.StateMetaInfo]) -> None:
        """Raise :class:`errors.StateError` naming every registered state whose kind or
        serializers differ from the checkpoint's ``restored`` meta info."""

    # -- metrics and lifecycle ----------------------------------------------------------------

    @abc.abstractmethod
    def num_keys(self) -> int:
        """Number of (state, key, namespace) entries held."""

    @abc.abstractmethod
    def approx_size_bytes(self) -> int:
        """A rough size estimate of the held state, for metrics."""

    @abc.abstractmethod
    def dispose(self) -> None:
        """Release all state; the backend cannot be used afterwards."""

    def check_key_group(self, key_group: int) -> None:
        if key_group not in self.key_group_range:
            raise errors.StateError(
                f"key group {key_group} is outside this backend's key groups "
                f"{self.key_group_range.to_list()}; restore each key group into the subtask "
                "whose KeyGroupRange.of_operator(...) contains it"
            )
