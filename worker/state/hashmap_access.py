"""Shared plumbing of the hashmap state objects: locating the current key's dict, namespaces,
TTL rules, and turning misuse into a clear :class:`errors.StateError`.

The state classes build on :class:`HashMapState` (no TTL, :mod:`streamjob.state.hashmap_states`)
and :class:`TtlState` (:mod:`streamjob.state.hashmap_ttl`,
:mod:`streamjob.state.hashmap_ttl_collections`); their data lives in a
:class:`~streamjob.state.hashmap_table.StateTable`. Misuse (no current key) surfaces as a dict or
list error, caught only on that exceptional path, then diagnosed by ``_check_access``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamjob import clock as clock_mod
from streamjob import errors
from streamjob.state import api, hashmap_table

if TYPE_CHECKING:
    from streamjob.state import backend as backend_mod

ACCESS_ERRORS = (TypeError, AttributeError, IndexError)
MISSING: Any = object()
IMMUTABLE_DEFAULTS = (type(None), int, float, complex, str, bytes, bool, tuple, frozenset)


def check_namespace(namespace: Any) -> None:
    if namespace is None or type(namespace) is int:
        return
    if type(namespace) is tuple:
        for part in namespace:
            if type(part) is not int:
                break
        else:
            return
    raise errors.StateError(
        f"namespace {namespace!r} is not None, an int or a tuple of ints "
        "(a window is the namespace (start, end))"
    )


class HashMapState(api.State):
    """Shared plumbing: the backend, the table, the current namespace, error diagnosis."""

    __slots__ = ("_backend", "_name", "_ns", "_ns_tables", "_table", "_tables")

    def __init__(
        self, backend: backend_mod.KeyedStateBackend, table: hashmap_table.StateTable
    ) -> None:
        self._backend = backend
        self._table = table
        self._tables = table.tables
        self._ns_tables = table.ns_tables
        self._name = table.descriptor.name
        self._ns: Any = None

    def set_current_namespace(self, namespace: api.Namespace) -> None:
        check_namespace(namespace)
        self._ns = namespace

    def get_current_namespace(self) -> api.Namespace:
        return self._ns  # type: ignore[no-any-return]

    def _locate(self, namespace: Any) -> tuple[dict[Any, Any], Any]:
        """The dict and dict key of the current key in ``namespace`` (off the hot path)."""
        b = self._backend
        try:
            if namespace is None:
                return self._tables[b.current_key_group], b.current_key  # type: ignore[index]
            return self._ns_tables[b.current_key_group], (  # type: ignore[index]
                b.current_key,
                namespace,
            )
        except ACCESS_ERRORS:
            self._check_access()
            raise

    def _check_access(self) -> None:
        """Raise a clear :class:`errors.StateError` if the current key is unusable."""
        b = self._backend
        kg = b.current_key_group
        if kg is None:
            raise errors.StateError(
                f"state {self._name!r} was accessed with no current key: keyed state exists "
                "only while a keyed function processes a record or timer (after key_by); "
                "outside the runtime, call backend.set_current_key(key) first"
            )
        if type(kg) is not int or not 0 <= kg < len(self._tables):
            raise errors.StateError(
                f"state {self._name!r}: current_key_group {kg!r} is not a key group in "
                f"[0, {len(self._tables)}); set it from the partitioner's key group"
            )

    def clear(self) -> None:
        table, k = self._locate(self._ns)
        table.pop(k, None)

    def _pop(self, namespace: Any) -> Any:
        table, k = self._locate(namespace)
        return table.pop(k, MISSING)


class TtlState(HashMapState):
    """Shared TTL plumbing: the clock, the config, and the single-value read rule."""

    __slots__ = ("_clock", "_return_expired", "_ttl", "_update_on_read")

    def __init__(
        self,
        backend: backend_mod.KeyedStateBackend,
        table: hashmap_table.StateTable,
        clock: clock_mod.Clock,
    ) -> None:
        super().__init__(backend, table)
        config = table.descriptor.ttl_config
        assert config is not None
        self._clock = clock
        self._ttl = config.ttl_ms
        self._update_on_read = config.update_on_read
        self._return_expired = config.return_expired

    def _read(self, namespace: Any) -> Any:
        """The value of a single-value state, applying Flink's read rule; MISSING if none."""
        table, k = self._locate(namespace)
        stored = table.get(k)
        if stored is None:
            return MISSING
        value, ts = stored
        now = self._clock.now_ms()
        if ts + self._ttl <= now:
            del table[k]
            return value if self._return_expired else MISSING
        if self._update_on_read:
            table[k] = (value, now)
        return value

    def _pop_unexpired(self, namespace: Any, now: int) -> Any:
        """Remove and return the unexpired value in ``namespace`` (MISSING if none)."""
        table, k = self._locate(namespace)
        stored = table.pop(k, None)
        if stored is None or stored[1] + self._ttl <= now:
            return MISSING
        return stored[0]
