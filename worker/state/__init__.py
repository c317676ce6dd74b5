"""``streamjob.state``: keyed state for user functions, with PyFlink's names.

Re-exports only. Descriptors and TTL are what jobs use; backends are what the runtime uses.
"""

from streamjob.state.aggregate import AggregateFunction, ReduceFunction
from streamjob.state.api import (
    AggregatingState,
    AppendingState,
    ListState,
    MapState,
    MergingState,
    Namespace,
    ReducingState,
    State,
    ValueState,
)
from streamjob.state.backend import KeyedStateBackend
from streamjob.state.descriptors import (
    AggregatingStateDescriptor,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateDescriptor,
    ValueStateDescriptor,
)
from streamjob.state.hashmap import HashMapStateBackend
from streamjob.state.meta import SerializerRef, StateKind, StateMetaInfo
from streamjob.state.serializers import (
    BytesSerializer,
    IntSerializer,
    JsonSerializer,
    PickleSerializer,
    StrSerializer,
    TypeSerializer,
    get_serializer,
    register_serializer,
)
from streamjob.state.ttl import StateTtlConfig, StateVisibility, TtlTimeCharacteristic, UpdateType

__all__ = [
    "AggregateFunction",
    "AggregatingState",
    "AggregatingStateDescriptor",
    "AppendingState",
    "BytesSerializer",
    "HashMapStateBackend",
    "IntSerializer",
    "JsonSerializer",
    "KeyedStateBackend",
    "ListState",
    "ListStateDescriptor",
    "MapState",
    "MapStateDescriptor",
    "MergingState",
    "Namespace",
    "PickleSerializer",
    "ReduceFunction",
    "ReducingState",
    "ReducingStateDescriptor",
    "SerializerRef",
    "State",
    "StateDescriptor",
    "StateKind",
    "StateMetaInfo",
    "StateTtlConfig",
    "StateVisibility",
    "StrSerializer",
    "TtlTimeCharacteristic",
    "TypeSerializer",
    "UpdateType",
    "ValueState",
    "ValueStateDescriptor",
    "get_serializer",
    "register_serializer",
]
