"""Copy-on-write per entry: what stands in a key group's slot while a snapshot is pending.

While a snapshot has not serialized key group ``kg``, both slots of ``kg`` in every
:class:`~streamjob.state.hashmap_table.StateTable` hold a :class:`PendingKeyGroup` in front of
the real dict. The state objects use it as they use any dict; it keeps, per entry, what the
snapshot needs before the entry changes (Flink's ``CopyOnWriteStateMap`` idea, per entry):

* a write or delete of an entry saves the entry's value at the barrier first (or ``MISSING``:
  the entry is new), once per entry; the old object is replaced, not changed, so it is kept
  as it is;
* a read hands out the stored object, which the caller may change in place (a value mutated
  and never written back, a list the backend appends to): the first read of an entry saves a
  frozen copy of it when that is cheap (an immutable value as it is; a list of immutable
  items as a tuple; a map of immutable keys and values as a copy); otherwise (a mutable value:
  a dict, a user object) it calls ``touch(kg)``, and the snapshot serializes the whole key
  group there and then, as it was at the barrier;
* anything else (iterating values or items, ``update``, ``clear``...) calls ``touch(kg)`` too;
  membership, length and keys pass through.

:func:`as_of_snapshot` gives a slot's dict as it was at the barrier: the real dict with the
saved entries put back (a copy only if any was saved). Entries deleted and put back by the
snapshot move to the end of the dict, so a key group's bytes may differ from a snapshot taken
at the barrier in the order of entries, never in content. The hot path is untouched outside
snapshots; while a key group is pending, each access costs a Python call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from streamjob.state import meta

MISSING: Any = object()
"""A saved entry that did not exist at the barrier."""
MUTABLE: Any = object()
"""What a freezer returns for a value it cannot keep by copying."""

Freeze = Callable[[Any], Any]

_ATOMIC = frozenset({int, float, complex, str, bytes, bool, type(None)})
_NESTED = frozenset({tuple, frozenset})
_IMMUTABLE = _ATOMIC | _NESTED
_DEPTH = 3


def immutable(objects: list[Any], depth: int = 0) -> bool:
    """Whether every object is an immutable builtin: atomic, or (``depth`` > 0) a tuple or
    frozenset of such objects, nested at most ``depth`` levels. Exact types: a subclass of
    ``str`` or ``tuple`` may carry mutable attributes."""
    types = set(map(type, objects))
    if types <= _ATOMIC:
        return True
    if depth == 0 or not types <= _IMMUTABLE:
        return False
    nested = objects if not types & _ATOMIC else [o for o in objects if type(o) in _NESTED]
    return immutable(list(chain.from_iterable(nested)), depth - 1)


def freezer(info: meta.StateMetaInfo) -> Freeze:
    """How to keep one stored object of a state as it is now (see the module docstring)."""
    depth = _DEPTH + (info.ttl is not None)  # with a TTL: (value, ts)
    if info.kind is meta.StateKind.LIST:

        def freeze_list(stored: list[Any]) -> Any:
            return tuple(stored) if immutable(list(stored), depth) else MUTABLE

        return freeze_list
    if info.kind is meta.StateKind.MAP:

        def freeze_map(stored: dict[Any, Any]) -> Any:
            if immutable(list(stored), _DEPTH) and immutable(list(stored.values()), depth):
                return dict(stored)
            return MUTABLE

        return freeze_map

    def freeze_one(stored: Any) -> Any:
        if type(stored) in _ATOMIC or immutable([stored], depth):
            return stored
        return MUTABLE

    return freeze_one


def _touching(name: str) -> Any:
    """A dict method of :class:`PendingKeyGroup` that touches the key group, then delegates."""
    method = getattr(dict, name)

    def call(self: PendingKeyGroup, *args: Any, **kwargs: Any) -> Any:
        if self.saved is not None:
            self.touch(self.key_group)
        return method(self.real, *args, **kwargs)

    call.__name__ = name
    return call


def _passing(name: str) -> Any:
    """A dict method of :class:`PendingKeyGroup` that reads no value: straight to ``real``."""
    method = getattr(dict, name)

    def call(self: PendingKeyGroup, *args: Any, **kwargs: Any) -> Any:
        return method(self.real, *args, **kwargs)

    call.__name__ = name
    return call


class PendingKeyGroup(dict[Any, Any]):
    """Stands in for one slot of a key group a snapshot has not serialized yet (see the module
    docstring). Empty itself, so nothing can read around it; ``saved`` is ``None`` once the
    snapshot has the key group (the guard then only delegates)."""

    __slots__ = ("freeze", "key_group", "real", "saved", "touch")

    def __init__(
        self,
        real: dict[Any, Any],
        key_group: int,
        touch: Callable[[int], None],
        freeze: Freeze,
    ) -> None:
        super().__init__()
        self.real = real
        self.key_group = key_group
        self.touch = touch
        self.freeze = freeze
        self.saved: dict[Any, Any] | None = {}

    def _expose(self, key: Any, stored: Any) -> None:
        """``stored`` (the entry of ``key``) is about to be handed out."""
        saved = self.saved
        if saved is None or key in saved:
            return
        frozen = self.freeze(stored)
        if frozen is MUTABLE:
            self.touch(self.key_group)  # the whole key group is serialized now
        elif self.saved is not None:
            self.saved[key] = frozen

    def _replace(self, key: Any) -> None:
        """The entry of ``key`` is about to be replaced or deleted (not changed)."""
        saved = self.saved
        if saved is not None and key not in saved:
            saved[key] = self.real.get(key, MISSING)

    def get(self, key: Any, default: Any = None) -> Any:
        stored = self.real.get(key, MISSING)
        if stored is MISSING:
            return default
        self._expose(key, stored)
        return stored

    def __getitem__(self, key: Any) -> Any:
        stored = self.real[key]
        self._expose(key, stored)
        return stored

    def __setitem__(self, key: Any, value: Any) -> None:
        self._replace(key)
        self.real[key] = value

    def __delitem__(self, key: Any) -> None:
        self._replace(key)
        del self.real[key]

    def pop(self, key: Any, *default: Any) -> Any:
        stored = self.real.get(key, MISSING)
        if stored is MISSING:
            self._replace(key)
        else:
            self._expose(key, stored)  # the caller gets the object: it may change it
        return self.real.pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        stored = self.real.get(key, MISSING)
        if stored is not MISSING:
            self._expose(key, stored)
            return stored
        self._replace(key)
        self.real[key] = default
        return default

    __contains__ = _passing("__contains__")
    __len__ = _passing("__len__")
    __iter__ = _passing("__iter__")
    keys = _passing("keys")
    popitem = _touching("popitem")
    update = _touching("update")
    clear = _touching("clear")
    values = _touching("values")
    items = _touching("items")
    copy = _touching("copy")
    __eq__ = _touching("__eq__")
    __ne__ = _touching("__ne__")
    __repr__ = _touching("__repr__")
    __reversed__ = _touching("__reversed__")
    __or__ = _touching("__or__")
    __ior__ = _touching("__ior__")


def live(slot: dict[Any, Any]) -> dict[Any, Any]:
    """The real dict of a key-group slot, looking through a :class:`PendingKeyGroup`."""
    return slot.real if type(slot) is PendingKeyGroup else slot


def as_of_snapshot(slot: dict[Any, Any]) -> dict[Any, Any]:
    """A key-group slot's dict as the pending snapshot must see it (the real dict itself when
    nothing was saved)."""
    if type(slot) is not PendingKeyGroup or not slot.saved:
        return live(slot)
    out = dict(slot.real)
    for key, stored in slot.saved.items():
        if stored is MISSING:
            out.pop(key, None)
        else:
            out[key] = stored
    return out


def saved_entries(slot: dict[Any, Any]) -> Iterator[Any]:
    """The keys whose barrier value a slot's guard saved (none for a real dict)."""
    if type(slot) is PendingKeyGroup and slot.saved:
        yield from slot.saved
