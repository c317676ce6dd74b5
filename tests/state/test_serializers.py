"""State serializers and their registry (``streamjob.state.serializers``).

Aspects covered: round trips of every built-in serializer (property tests), their frozen byte
shapes where simple, refusal of values of the wrong type, the registry (built-ins known by
name, unknown names and name clashes refused with advice), and the pickle warning being in the
module's documentation.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamjob import errors
from streamjob.state import (
    BytesSerializer,
    IntSerializer,
    JsonSerializer,
    PickleSerializer,
    StrSerializer,
    get_serializer,
    register_serializer,
    serializers,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@given(JSON)
def test_json_round_trip(value: Any) -> None:
    serializer = JsonSerializer()
    assert serializer.deserialize(serializer.serialize(value)) == value


@given(st.integers() | st.text() | st.binary() | st.tuples(st.integers(), st.text()))
def test_pickle_round_trip(value: Any) -> None:
    serializer = PickleSerializer()
    assert serializer.deserialize(serializer.serialize(value)) == value


@given(st.integers())
def test_int_round_trip(value: int) -> None:
    serializer = IntSerializer()
    assert serializer.deserialize(serializer.serialize(value)) == value


@given(st.text())
def test_str_round_trip(value: str) -> None:
    serializer = StrSerializer()
    assert serializer.deserialize(serializer.serialize(value)) == value


@given(st.binary())
def test_bytes_round_trip(value: bytes) -> None:
    serializer = BytesSerializer()
    assert serializer.deserialize(serializer.serialize(value)) == value


def test_frozen_byte_shapes() -> None:
    assert IntSerializer().serialize(0) == b"\x00"
    assert IntSerializer().serialize(-1) == b"\xff"
    assert IntSerializer().serialize(256) == b"\x01\x00"
    assert StrSerializer().serialize("é") == b"\xc3\xa9"
    assert JsonSerializer().serialize({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


@pytest.mark.parametrize(
    ("serializer", "value"),
    [
        (IntSerializer(), "1"),
        (IntSerializer(), True),
        (StrSerializer(), 1),
        (BytesSerializer(), "x"),
    ],
)
def test_wrong_value_types_are_refused(serializer: Any, value: Any) -> None:
    with pytest.raises(TypeError, match="takes"):
        serializer.serialize(value)


def test_builtins_are_registered_by_name() -> None:
    for name, kind in [
        ("pickle", PickleSerializer),
        ("json", JsonSerializer),
        ("bytes", BytesSerializer),
        ("str", StrSerializer),
        ("int", IntSerializer),
    ]:
        serializer = get_serializer(name)
        assert isinstance(serializer, kind)
        assert serializer.name == name
        assert serializer.version == 1


def test_unknown_name_is_a_state_error_with_advice() -> None:
    with pytest.raises(errors.StateError, match="register_serializer"):
        get_serializer("avro")


def test_custom_serializer_registers_and_clashes_are_refused() -> None:
    class Upper:
        name = "test-upper"
        version = 3

        def serialize(self, obj: Any) -> bytes:
            return str(obj).upper().encode()

        def deserialize(self, data: bytes) -> Any:
            return data.decode()

    register_serializer(Upper())
    register_serializer(Upper())  # the same class again is fine
    assert get_serializer("test-upper").version == 3

    class Clash(Upper):
        pass

    with pytest.raises(errors.StateError, match="taken"):
        register_serializer(Clash())
    with pytest.raises(TypeError, match="not a TypeSerializer"):
        register_serializer(object())  # type: ignore[arg-type]


def test_pickle_danger_is_documented() -> None:
    assert serializers.__doc__ is not None
    assert "runs code" in serializers.__doc__
    assert PickleSerializer.__doc__ is not None
    assert "trusted" in PickleSerializer.__doc__
