"""Contract of every keyed state backend: the state kinds, namespaces, registration, errors.

Runs once per backend in ``backend_factory`` (``conftest.py``) and uses only the public
interface, so a new backend passes it or is wrong. Aspects covered here:

* the five state kinds: reads of empty state, writes, clears, ``None`` handling, isolation
  between keys, copies returned (mutating a returned list or a default value changes nothing);
* the hot-path contract: current key and key group are plain attributes, not properties;
* registration: the same name gives the same object, a different kind or serializer is refused
  with both named; misuse without a current key raises a clear ``StateError``;
* namespaces: isolation from each other and from the void namespace, validation, ``get_keys``,
  ``apply_to_all_keys``, ``merge_namespaces`` for list, reducing and aggregating state;
* metrics and lifecycle: ``num_keys``, ``approx_size_bytes``, ``dispose``.

TTL lives in ``test_backend_contract_ttl.py``, snapshots and rescaling in
``test_backend_contract_snapshots.py``.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from streamjob import errors, keygroups
from streamjob.state import (
    AggregateFunction,
    AggregatingStateDescriptor,
    JsonSerializer,
    KeyedStateBackend,
    ListStateDescriptor,
    MapStateDescriptor,
    ReduceFunction,
    ReducingStateDescriptor,
    StrSerializer,
    ValueStateDescriptor,
)

from .conftest import BackendFactory


class Average(AggregateFunction[float, tuple[float, int], float]):
    def create_accumulator(self) -> tuple[float, int]:
        return (0.0, 0)

    def add(self, value: float, accumulator: tuple[float, int]) -> tuple[float, int]:
        return (accumulator[0] + value, accumulator[1] + 1)

    def get_result(self, accumulator: tuple[float, int]) -> float:
        return accumulator[0] / accumulator[1]

    def merge(self, a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
        return (a[0] + b[0], a[1] + b[1])


class Concat(ReduceFunction[str]):
    def reduce(self, value1: str, value2: str) -> str:
        return value1 + value2


def every_kind() -> list[Any]:
    return [
        ValueStateDescriptor("v"),
        ListStateDescriptor("l"),
        MapStateDescriptor("m"),
        ReducingStateDescriptor("r", lambda a, b: a + b),
        AggregatingStateDescriptor("a", Average()),
    ]


# -- value state ------------------------------------------------------------------------------


def test_value_state_reads_default_then_written_value(backend: KeyedStateBackend) -> None:
    count = backend.get_state(ValueStateDescriptor("count", default_value=0))
    plain = backend.get_state(ValueStateDescriptor("plain"))
    backend.set_current_key("alice")
    assert count.value() == 0
    assert plain.value() is None
    count.update(count.value() + 5)
    assert count.value() == 5
    backend.set_current_key("bob")
    assert count.value() == 0
    backend.set_current_key("alice")
    assert count.value() == 5


def test_value_update_none_and_clear_remove_the_value(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ValueStateDescriptor("v", default_value="d"))
    backend.set_current_key(1)
    state.update("x")
    state.update(None)
    assert state.value() == "d"
    state.update("y")
    state.clear()
    assert state.value() == "d"
    assert backend.num_keys() == 0


def test_mutable_default_value_is_never_shared(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ValueStateDescriptor("seen", default_value=[]))
    backend.set_current_key("a")
    mine = state.value()
    mine.append(1)
    assert state.value() == []
    backend.set_current_key("b")
    assert state.value() == []


def test_hot_path_attribute_stores_select_the_key(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ValueStateDescriptor("v"))
    for key in ["k1", b"k2", 3, -4, ("t", 5)]:
        backend.current_key = key
        backend.current_key_group = keygroups.assign_to_key_group(key, 128)
        state.update(repr(key))
    for key in ["k1", b"k2", 3, -4, ("t", 5)]:
        backend.set_current_key(key)
        assert state.value() == repr(key)


def test_current_key_and_group_are_plain_attributes_not_properties(
    backend: KeyedStateBackend,
) -> None:
    for name in ("current_key", "current_key_group"):
        attribute = inspect.getattr_static(type(backend), name, None)
        assert not isinstance(attribute, property), f"{name} must be a plain attribute"


# -- list state -------------------------------------------------------------------------------


def test_list_state_add_add_all_update_get(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ListStateDescriptor("events"))
    backend.set_current_key("k")
    assert state.get() == []
    state.add(1)
    state.add_all([2, 3])
    assert state.get() == [1, 2, 3]
    state.update([9, 8])
    assert state.get() == [9, 8]
    state.add_all([])
    assert state.get() == [9, 8]
    state.update([])
    assert state.get() == []
    assert backend.num_keys() == 0


def test_list_state_returns_a_copy(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ListStateDescriptor("events"))
    backend.set_current_key("k")
    state.add("a")
    got = state.get()
    got.append("not stored")
    for item in state.get():  # adding while iterating a returned list must terminate
        state.add(item + "!")
    assert state.get() == ["a", "a!"]


def test_list_state_refuses_none(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ListStateDescriptor("events"))
    backend.set_current_key("k")
    with pytest.raises(errors.StateError, match="None"):
        state.add(None)
    with pytest.raises(errors.StateError, match="None"):
        state.add_all([1, None])
    assert state.get() == []


# -- map state --------------------------------------------------------------------------------


def test_map_state_operations(backend: KeyedStateBackend) -> None:
    state = backend.get_state(MapStateDescriptor("m"))
    backend.set_current_key("k")
    assert state.is_empty()
    assert state.get("x") is None
    assert not state.contains("x")
    state.put("x", 1)
    state.put_all({"y": 2, ("z", 3): [3]})
    assert state.get("x") == 1
    assert state.contains(("z", 3))
    assert sorted(map(str, state.keys())) == sorted(map(str, ["x", "y", ("z", 3)]))
    assert sorted(map(str, state.values())) == ["1", "2", "[3]"]
    assert dict(state.items()) == {"x": 1, "y": 2, ("z", 3): [3]}
    state.remove("x")
    state.remove("absent")
    assert not state.contains("x")
    assert not state.is_empty()
    state.clear()
    assert state.is_empty()
    assert state.items() == []


def test_map_state_may_change_while_iterating_its_keys(backend: KeyedStateBackend) -> None:
    state = backend.get_state(MapStateDescriptor("m"))
    backend.set_current_key("k")
    state.put_all({i: i * i for i in range(10)})
    for key in state.keys():  # noqa: SIM118 - MapState, not a dict: keys() is a copy
        if key % 2:
            state.remove(key)
    assert sorted(state.keys()) == [0, 2, 4, 6, 8]
    for key in state.keys():  # noqa: SIM118 - MapState, not a dict
        state.remove(key)
    assert state.is_empty()
    assert backend.num_keys() == 0


# -- reducing and aggregating state ----------------------------------------------------------


@pytest.mark.parametrize("function", [lambda a, b: a + b, Concat()], ids=["callable", "object"])
def test_reducing_state(backend: KeyedStateBackend, function: Any) -> None:
    state = backend.get_state(ReducingStateDescriptor("r", function))
    backend.set_current_key("k")
    assert state.get() is None
    for part in ["a", "b", "c"]:
        state.add(part)
    assert state.get() == "abc"
    state.add(None)  # Flink: adding null clears
    assert state.get() is None
    state.add("z")
    state.clear()
    assert state.get() is None


def test_aggregating_state(backend: KeyedStateBackend) -> None:
    state = backend.get_state(AggregatingStateDescriptor("avg", Average()))
    backend.set_current_key("k")
    assert state.get() is None
    for value in [1.0, 2.0, 6.0]:
        state.add(value)
    assert state.get() == 3.0
    backend.set_current_key("other")
    assert state.get() is None
    state.add(10.0)
    assert state.get() == 10.0
    state.clear()
    assert state.get() is None


# -- registration and misuse -----------------------------------------------------------------


def test_same_name_gives_the_same_state_object(backend: KeyedStateBackend) -> None:
    first = backend.get_state(ValueStateDescriptor("v"))
    assert backend.get_state(ValueStateDescriptor("v")) is first


def test_reregistration_with_another_kind_names_both(backend: KeyedStateBackend) -> None:
    backend.get_state(ValueStateDescriptor("s"))
    with pytest.raises(errors.StateError) as info:
        backend.get_state(ListStateDescriptor("s"))
    message = str(info.value)
    assert "ValueStateDescriptor" in message
    assert "ListStateDescriptor" in message


def test_reregistration_with_another_serializer_names_both(backend: KeyedStateBackend) -> None:
    backend.get_state(ValueStateDescriptor("s", serializer=StrSerializer()))
    with pytest.raises(errors.StateError, match=r"str v1.*json v1"):
        backend.get_state(ValueStateDescriptor("s", serializer=JsonSerializer()))


@pytest.mark.parametrize("descriptor", every_kind(), ids=lambda d: d.name)
def test_access_without_current_key_is_a_clear_state_error(
    backend: KeyedStateBackend, descriptor: Any
) -> None:
    state = backend.get_state(descriptor)
    read = {"v": "value", "l": "get", "m": "is_empty", "r": "get", "a": "get"}[descriptor.name]
    with pytest.raises(errors.StateError, match="no current key"):
        getattr(state, read)()
    with pytest.raises(errors.StateError, match="no current key"):
        state.clear()


def test_key_of_another_subtask_is_refused(backend_factory: BackendFactory) -> None:
    kg_range = keygroups.KeyGroupRange.of_operator(0, 2, 128)
    backend = backend_factory(key_group_range=kg_range)
    state = backend.get_state(ValueStateDescriptor("v"))
    foreign = next(k for k in range(1000) if keygroups.assign_to_key_group(k, 128) >= 64)
    with pytest.raises(errors.StateError, match="outside"):
        backend.set_current_key(foreign)
    backend.current_key = foreign
    backend.current_key_group = keygroups.assign_to_key_group(foreign, 128)
    with pytest.raises(errors.StateError, match="outside"):
        state.update(1)


def test_unknown_state_name_in_get_keys(backend: KeyedStateBackend) -> None:
    with pytest.raises(errors.StateError, match="no state named 'nope'"):
        list(backend.get_keys("nope", None))


# -- namespaces -------------------------------------------------------------------------------


def test_namespaces_are_isolated(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ValueStateDescriptor("v"))
    backend.set_current_key("k")
    state.update("void")
    for namespace in [(0, 10), (10, 20), 7]:
        state.set_current_namespace(namespace)
        assert state.value() is None
        state.update(f"in {namespace}")
    state.set_current_namespace((0, 10))
    assert state.value() == "in (0, 10)"
    state.clear()
    assert state.value() is None
    state.set_current_namespace(None)
    assert state.value() == "void"
    state.set_current_namespace(7)
    assert state.value() == "in 7"


def test_a_key_tuple_never_collides_with_key_and_namespace(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ValueStateDescriptor("v"))
    backend.set_current_key(("a", 1))
    state.update("tuple key, void namespace")
    backend.set_current_key("a")
    state.set_current_namespace(1)
    state.update("key a, namespace 1")
    backend.set_current_key(("a", 1))
    state.set_current_namespace(None)
    assert state.value() == "tuple key, void namespace"


@pytest.mark.parametrize("namespace", [1.5, "w", True, [1, 2], (1, "x")])
def test_bad_namespaces_are_refused(backend: KeyedStateBackend, namespace: Any) -> None:
    state = backend.get_state(ValueStateDescriptor("v"))
    with pytest.raises(errors.StateError, match="namespace"):
        state.set_current_namespace(namespace)


def test_get_keys_per_namespace(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ListStateDescriptor("l"))
    for key in range(50):
        backend.set_current_key(key)
        state.set_current_namespace((0, 10) if key % 2 else None)
        state.add(key)
    assert sorted(backend.get_keys("l", (0, 10))) == list(range(1, 50, 2))
    assert sorted(backend.get_keys("l", None)) == list(range(0, 50, 2))
    assert list(backend.get_keys("l", (10, 20))) == []


def test_apply_to_all_keys_sets_each_key_and_restores_the_previous(
    backend: KeyedStateBackend,
) -> None:
    descriptor: ReducingStateDescriptor[int] = ReducingStateDescriptor("sum", lambda a, b: a + b)
    state = backend.get_state(descriptor)
    window = (0, 100)
    state.set_current_namespace(window)
    for key in ["a", "b", "c"]:
        backend.set_current_key(key)
        state.add(ord(key))
    backend.set_current_key("z")
    state.set_current_namespace(None)
    seen: dict[str, int] = {}

    def fire(key: Any, scoped: Any) -> None:
        assert backend.current_key == key
        seen[key] = scoped.get()
        scoped.clear()

    backend.apply_to_all_keys(window, descriptor, fire)
    assert seen == {"a": 97, "b": 98, "c": 99}
    assert list(backend.get_keys("sum", window)) == []
    assert backend.current_key == "z"
    state.add(1)
    assert state.get() == 1, "the state's own namespace (void) is restored"


def test_merge_namespaces_of_reducing_state(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ReducingStateDescriptor("r", lambda a, b: a + b))
    backend.set_current_key("k")
    for namespace, value in [((0, 5), "a"), ((3, 8), "b"), ((9, 12), "c")]:
        state.set_current_namespace(namespace)
        state.add(value)
    state.merge_namespaces((9, 12), [(0, 5), (3, 8), (100, 200)])
    state.set_current_namespace((9, 12))
    assert state.get() == "cab", "target first, then the sources in order (Flink)"
    for source in [(0, 5), (3, 8)]:
        state.set_current_namespace(source)
        assert state.get() is None
    assert sorted(backend.get_keys("r", (9, 12))) == ["k"]


def test_merge_namespaces_into_an_empty_target(backend: KeyedStateBackend) -> None:
    state = backend.get_state(AggregatingStateDescriptor("avg", Average()))
    backend.set_current_key("k")
    for namespace, value in [((0, 5), 2.0), ((3, 8), 4.0)]:
        state.set_current_namespace(namespace)
        state.add(value)
    state.merge_namespaces((0, 8), [(0, 5), (3, 8)])
    state.set_current_namespace((0, 8))
    assert state.get() == 3.0
    state.set_current_namespace((0, 5))
    assert state.get() is None


def test_merge_namespaces_of_list_state_only_touches_the_current_key(
    backend: KeyedStateBackend,
) -> None:
    state = backend.get_state(ListStateDescriptor("l"))
    for key in ["k", "other"]:
        backend.set_current_key(key)
        for namespace, values in [((0, 5), [1, 2]), ((3, 8), [3]), ((7, 9), [4])]:
            state.set_current_namespace(namespace)
            state.add_all(values)
    backend.set_current_key("k")
    state.merge_namespaces((7, 9), [(0, 5), (3, 8)])
    state.set_current_namespace((7, 9))
    assert sorted(state.get()) == [1, 2, 3, 4]
    backend.set_current_key("other")
    assert state.get() == [4]
    state.set_current_namespace((0, 5))
    assert state.get() == [1, 2]


# -- metrics and lifecycle -------------------------------------------------------------------


def test_num_keys_and_size_grow_with_state(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ValueStateDescriptor("v"))
    empty = backend.approx_size_bytes()
    for key in range(100):
        backend.set_current_key(key)
        state.update("x" * 100)
    assert backend.num_keys() == 100
    assert backend.approx_size_bytes() > empty + 100 * 100


def test_dispose_releases_state_and_refuses_further_use(backend: KeyedStateBackend) -> None:
    state = backend.get_state(ValueStateDescriptor("v"))
    backend.set_current_key("k")
    state.update(1)
    backend.dispose()
    assert backend.num_keys() == 0
    with pytest.raises(errors.StateError, match="disposed"):
        backend.get_state(ValueStateDescriptor("v"))
