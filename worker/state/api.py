"""The keyed state interfaces user functions see (PyFlink's ``ValueState``, ``ListState``, ...).

Every state object belongs to one backend (:mod:`streamjob.state.backend`) and reads the
backend's current key at each access, so one object serves all keys. Each also has a current
namespace (default: the void namespace ``None``); windows use ``(start, end)`` tuples of ints.
Implementations: :mod:`streamjob.state.hashmap_states` and :mod:`streamjob.state.hashmap_ttl`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

V = TypeVar("V")
K = TypeVar("K")
IN = TypeVar("IN")
OUT = TypeVar("OUT")

Namespace: TypeAlias = "int | tuple[Any, ...] | None"
"""``None`` (the void namespace), an int, or a tuple of ints (a window is ``(start, end)``)."""


class State(abc.ABC):
    """Base of all keyed state: scoped to the backend's current key and this namespace."""

    __slots__ = ()

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove the state of the current key in the current namespace."""

    @abc.abstractmethod
    def set_current_namespace(self, namespace: Namespace) -> None:
        """Scope later accesses to ``namespace`` (``None``: the void namespace)."""


class ValueState(State, Generic[V]):
    """One value per key (and namespace)."""

    __slots__ = ()

    @abc.abstractmethod
    def value(self) -> V | None:
        """The value, or the descriptor's default value when none is set."""

    @abc.abstractmethod
    def update(self, value: V | None) -> None:
        """Set the value; ``update(None)`` clears it, as in Flink."""


class AppendingState(State, Generic[IN, OUT]):
    """State that values are added to and read back as one result."""

    __slots__ = ()

    @abc.abstractmethod
    def get(self) -> OUT:
        """The current result."""

    @abc.abstractmethod
    def add(self, value: IN) -> None:
        """Add ``value`` to the state."""


class MergingState(AppendingState[IN, OUT]):
    """Appending state whose namespaces can be merged (Flink's ``InternalMergingState``)."""

    __slots__ = ()

    @abc.abstractmethod
    def merge_namespaces(self, target: Namespace, sources: Sequence[Namespace]) -> None:
        """For the current key, fold the state of each of ``sources`` into ``target`` and
        remove it from the source (merging windows)."""


class ListState(MergingState[V, list[V]]):
    """A list of values per key; ``get()`` returns a new list (empty when none)."""

    __slots__ = ()

    @abc.abstractmethod
    def add_all(self, values: Iterable[V]) -> None:
        """Append every value."""

    @abc.abstractmethod
    def update(self, values: Iterable[V]) -> None:
        """Replace the list (an empty iterable clears it)."""


class ReducingState(MergingState[V, V | None]):
    """One value per key, combined with each added value by the reduce function."""

    __slots__ = ()


class AggregatingState(MergingState[IN, OUT | None]):
    """An accumulator per key; ``get()`` returns the aggregate function's result."""

    __slots__ = ()


class MapState(State, Generic[K, V]):
    """A map per key. ``keys()``, ``values()`` and ``items()`` return new lists, so the map may
    be changed while iterating over them."""

    __slots__ = ()

    @abc.abstractmethod
    def get(self, key: K) -> V | None:
        """The value under ``key``, or ``None``."""

    @abc.abstractmethod
    def put(self, key: K, value: V) -> None: ...

    @abc.abstractmethod
    def put_all(self, entries: Mapping[K, V]) -> None: ...

    @abc.abstractmethod
    def remove(self, key: K) -> None:
        """Remove ``key`` if present."""

    @abc.abstractmethod
    def contains(self, key: K) -> bool: ...

    @abc.abstractmethod
    def keys(self) -> list[K]: ...

    @abc.abstractmethod
    def values(self) -> list[V]: ...

    @abc.abstractmethod
    def items(self) -> list[tuple[K, V]]: ...

    @abc.abstractmethod
    def is_empty(self) -> bool: ...
