"""State descriptors with PyFlink's names: what a function asks the backend for.

A descriptor names a state, picks its kind and serializers, and optionally a TTL
(:mod:`streamjob.state.ttl`). ``backend.get_state(descriptor)`` (:mod:`streamjob.state.backend`)
turns it into a state object (:mod:`streamjob.state.api`); :meth:`StateDescriptor.meta_info` is
what checkpoints record about it (:mod:`streamjob.state.meta`). Bad arguments fail here, when
the job is built, not at the first record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from streamjob.state import aggregate, meta, serializers
from streamjob.state import ttl as state_ttl

if TYPE_CHECKING:
    # Type checkers only (typeshed ships typing_extensions): an unannotated
    # ``ValueStateDescriptor("v")`` is ``ValueStateDescriptor[Any]``, not an error.
    from typing_extensions import TypeVar

    V = TypeVar("V", default=Any)
    K = TypeVar("K", default=Any)
    IN = TypeVar("IN", default=Any)
    ACC = TypeVar("ACC", default=Any)
    OUT = TypeVar("OUT", default=Any)
else:
    from typing import TypeVar

    V = TypeVar("V")
    K = TypeVar("K")
    IN = TypeVar("IN")
    ACC = TypeVar("ACC")
    OUT = TypeVar("OUT")


def _checked_serializer(
    serializer: serializers.TypeSerializer | None, *, what: str
) -> serializers.TypeSerializer:
    if serializer is None:
        return serializers.DEFAULT_SERIALIZER
    if isinstance(serializer, type) or not isinstance(serializer, serializers.TypeSerializer):
        raise TypeError(
            f"{what} needs a TypeSerializer instance (name, version, serialize, deserialize), "
            f"got {serializer!r}; e.g. serializer=JsonSerializer()"
        )
    return serializer


class StateDescriptor:
    """Base of the five descriptors: a name, a kind, serializers and an optional TTL."""

    kind: ClassVar[meta.StateKind]

    def __init__(self, name: str, serializer: serializers.TypeSerializer | None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(
                f"a {type(self).__name__} needs a non-empty name (it names the state in "
                f"checkpoints), got {name!r}"
            )
        self.name = name
        self.serializer = _checked_serializer(serializer, what=self._what())
        self.ttl_config: state_ttl.StateTtlConfig | None = None

    def _what(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def get_name(self) -> str:
        return self.name

    def enable_time_to_live(self, ttl_config: state_ttl.StateTtlConfig) -> None:
        """Give this state a TTL (PyFlink: ``descriptor.enable_time_to_live(config)``)."""
        if not isinstance(ttl_config, state_ttl.StateTtlConfig):
            raise TypeError(
                f"{self._what()}.enable_time_to_live takes a StateTtlConfig "
                f"(StateTtlConfig.new_builder(Duration...).build()), got {ttl_config!r}"
            )
        self.ttl_config = ttl_config if ttl_config.is_enabled() else None

    @property
    def key_serializer(self) -> serializers.TypeSerializer | None:
        """The serializer of a MapState's user keys; ``None`` for the other kinds."""
        return None

    def meta_info(self) -> meta.StateMetaInfo:
        key = self.key_serializer
        return meta.StateMetaInfo(
            name=self.name,
            kind=self.kind,
            value_serializer=meta.SerializerRef.of(self.serializer),
            key_serializer=None if key is None else meta.SerializerRef.of(key),
            ttl=self.ttl_config,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, serializer={self.serializer.name})"


class ValueStateDescriptor(StateDescriptor, Generic[V]):
    """A single value per key; ``value()`` returns ``default_value`` when none was set.

    A mutable ``default_value`` is copied for each key that reads it, never shared.
    """

    kind = meta.StateKind.VALUE

    def __init__(
        self,
        name: str,
        serializer: serializers.TypeSerializer | None = None,
        default_value: V | None = None,
    ) -> None:
        super().__init__(name, serializer)
        self.default_value = default_value


class ListStateDescriptor(StateDescriptor, Generic[V]):
    """A list of values per key."""

    kind = meta.StateKind.LIST

    def __init__(self, name: str, serializer: serializers.TypeSerializer | None = None) -> None:
        super().__init__(name, serializer)


class MapStateDescriptor(StateDescriptor, Generic[K, V]):
    """A map per key; user keys and values have their own serializers."""

    kind = meta.StateKind.MAP

    def __init__(
        self,
        name: str,
        key_serializer: serializers.TypeSerializer | None = None,
        value_serializer: serializers.TypeSerializer | None = None,
    ) -> None:
        super().__init__(name, value_serializer)
        self._key_serializer = _checked_serializer(key_serializer, what=self._what())

    @property
    def key_serializer(self) -> serializers.TypeSerializer:
        return self._key_serializer

    @property
    def value_serializer(self) -> serializers.TypeSerializer:
        return self.serializer


class ReducingStateDescriptor(StateDescriptor, Generic[V]):
    """One value per key, combined with each added value by ``reduce_function``.

    ``reduce_function`` is a callable ``(a, b) -> c`` or an object with ``reduce(a, b)``.
    """

    kind = meta.StateKind.REDUCING

    def __init__(
        self,
        name: str,
        reduce_function: Callable[[V, V], V] | aggregate.ReduceFunction[V],
        serializer: serializers.TypeSerializer | None = None,
    ) -> None:
        super().__init__(name, serializer)
        self.reduce_function = reduce_function
        self.reduce: Callable[[Any, Any], Any] = aggregate.as_reduce_callable(
            reduce_function, what=self._what()
        )


class AggregatingStateDescriptor(StateDescriptor, Generic[IN, ACC, OUT]):
    """An accumulator per key, driven by an ``AggregateFunction``; ``serializer`` is the
    accumulator's."""

    kind = meta.StateKind.AGGREGATING

    def __init__(
        self,
        name: str,
        aggregate_function: aggregate.AggregateFunction[IN, ACC, OUT],
        serializer: serializers.TypeSerializer | None = None,
    ) -> None:
        super().__init__(name, serializer)
        aggregate.check_aggregate_function(aggregate_function, what=self._what())
        self.aggregate_function = aggregate_function
