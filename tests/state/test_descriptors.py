"""State descriptors, ``StateTtlConfig`` and state meta info, without any backend.

Aspects covered: PyFlink's constructor shapes and defaults; validation with clear errors (empty
name, reduce function that is not callable, aggregate function missing methods, serializer
class instead of instance, TTL of the wrong type or not positive); the TTL builder and its
nested enums; meta info of each kind, and its JSON round trip; what counts as incompatible.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob.duration import Duration
from streamjob.state import (
    AggregatingStateDescriptor,
    JsonSerializer,
    ListStateDescriptor,
    MapStateDescriptor,
    PickleSerializer,
    ReducingStateDescriptor,
    SerializerRef,
    StateKind,
    StateMetaInfo,
    StateTtlConfig,
    StateVisibility,
    StrSerializer,
    UpdateType,
    ValueStateDescriptor,
    meta,
)

from .test_backend_contract import Average, Concat


def test_defaults_are_pickle_without_ttl() -> None:
    descriptor: ValueStateDescriptor[int] = ValueStateDescriptor("v", default_value=3)
    assert descriptor.get_name() == "v"
    assert descriptor.default_value == 3
    assert isinstance(descriptor.serializer, PickleSerializer)
    assert descriptor.ttl_config is None
    mapping: MapStateDescriptor[str, int] = MapStateDescriptor("m")
    assert mapping.key_serializer.name == "pickle"
    assert mapping.value_serializer.name == "pickle"


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_a_name_is_required(name: Any) -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        ListStateDescriptor(name)


def test_reduce_function_may_be_callable_or_object_but_nothing_else() -> None:
    assert ReducingStateDescriptor("r", lambda a, b: a + b).reduce(1, 2) == 3
    assert ReducingStateDescriptor("r", Concat()).reduce("a", "b") == "ab"
    with pytest.raises(TypeError, match=r"ReducingStateDescriptor 'r' needs a reduce function"):
        ReducingStateDescriptor("r", 42)  # type: ignore[arg-type]


def test_aggregate_function_needs_all_four_methods() -> None:
    AggregatingStateDescriptor("a", Average())

    class Partial:
        def add(self, value: Any, acc: Any) -> Any:
            return acc

    with pytest.raises(TypeError, match="lacks create_accumulator, get_result, merge"):
        AggregatingStateDescriptor("a", Partial())  # type: ignore[arg-type]


def test_serializer_must_be_an_instance() -> None:
    with pytest.raises(TypeError, match="TypeSerializer instance"):
        ValueStateDescriptor("v", serializer=JsonSerializer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="TypeSerializer instance"):
        MapStateDescriptor("m", key_serializer="str")  # type: ignore[arg-type]


def test_ttl_builder_defaults_and_setters() -> None:
    config = StateTtlConfig.new_builder(Duration.of_minutes(5)).build()
    assert config.ttl_ms == 300_000
    assert config.update_type is UpdateType.OnCreateAndWrite
    assert config.state_visibility is StateVisibility.NeverReturnExpired
    assert not config.cleanup_in_full_snapshot
    config = (
        StateTtlConfig.new_builder(Duration.of_seconds(1))
        .set_update_type(StateTtlConfig.UpdateType.OnReadAndWrite)
        .set_state_visibility(StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)
        .cleanup_full_snapshot()
        .build()
    )
    assert config.update_on_read
    assert config.return_expired
    assert config.cleanup_in_full_snapshot
    assert (
        StateTtlConfig.new_builder(Duration.of_seconds(1))
        .update_ttl_on_read_and_write()
        .return_expired_if_not_cleaned_up()
        .build()
        == StateTtlConfig.new_builder(Duration.of_seconds(1))
        .set_update_type(UpdateType.OnReadAndWrite)
        .set_state_visibility(StateVisibility.ReturnExpiredIfNotCleanedUp)
        .build()
    )


def test_ttl_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        StateTtlConfig.new_builder(Duration.zero()).build()
    with pytest.raises(TypeError, match="Duration"):
        StateTtlConfig.new_builder(1000).build()  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="UpdateType"):
        StateTtlConfig.new_builder(Duration.of_seconds(1)).set_update_type("OnReadAndWrite")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="StateTtlConfig"):
        ValueStateDescriptor("v").enable_time_to_live(Duration.of_seconds(1))  # type: ignore[arg-type]


def test_disabled_update_type_means_no_ttl() -> None:
    descriptor: ValueStateDescriptor[int] = ValueStateDescriptor("v")
    descriptor.enable_time_to_live(
        StateTtlConfig.new_builder(Duration.of_seconds(1))
        .set_update_type(UpdateType.Disabled)
        .build()
    )
    assert descriptor.ttl_config is None


@pytest.mark.parametrize(
    ("descriptor", "kind", "key_serializer"),
    [
        (ValueStateDescriptor("s"), StateKind.VALUE, None),
        (ListStateDescriptor("s"), StateKind.LIST, None),
        (MapStateDescriptor("s", key_serializer=StrSerializer()), StateKind.MAP, "str"),
        (ReducingStateDescriptor("s", Concat()), StateKind.REDUCING, None),
        (AggregatingStateDescriptor("s", Average()), StateKind.AGGREGATING, None),
    ],
)
def test_meta_info_per_kind_round_trips_through_json(
    descriptor: Any, kind: StateKind, key_serializer: str | None
) -> None:
    descriptor.enable_time_to_live(
        StateTtlConfig.new_builder(Duration.of_seconds(2)).cleanup_full_snapshot().build()
    )
    info = descriptor.meta_info()
    assert info.kind is kind
    assert (info.key_serializer.name if info.key_serializer else None) == key_serializer
    assert StateMetaInfo.from_dict(info.to_dict()) == info


def test_malformed_meta_info_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed state meta info"):
        StateMetaInfo.from_dict({"name": "x", "kind": "tree"})


def test_incompatibilities_name_kind_and_serializers_but_not_ttl() -> None:
    base = StateMetaInfo("s", StateKind.VALUE, SerializerRef("pickle", 1))
    assert meta.incompatibilities(base, base) == []
    ttl = StateTtlConfig.new_builder(Duration.of_seconds(1)).build()
    assert (
        meta.incompatibilities(
            base, StateMetaInfo("s", StateKind.VALUE, base.value_serializer, ttl=ttl)
        )
        == []
    )
    changed = StateMetaInfo("s", StateKind.LIST, SerializerRef("json", 2))
    problems = meta.incompatibilities(base, changed)
    assert len(problems) == 2
    assert "kind changed" in problems[0]
    assert "json v2" in problems[1]
    assert "pickle v1" in problems[1]
