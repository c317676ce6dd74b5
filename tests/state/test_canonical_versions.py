"""Canonical format versions 1 and 2 through the backends, and the columns of version 2.

Aspects covered:

* every state kind, in the void and a window namespace, with and without TTL, restores from
  version-1 blobs (as older streamjobs wrote them) to the same state as from version-2 blobs;
* a version-1 body of a state the job never registers is written back unchanged inside a
  version-2 blob, and still restores;
* version-2 columns round-trip any entries: str keys (ASCII or not, empty), int and tuple keys
  mixed in one key group, void and window namespaces mixed, empty and many items; both layouts
  also read with keys and namespaces left encoded, and a writer takes them encoded (what a
  backend storing encoded keys does), but not mixed with decoded ones;
* damaged version-2 bodies (truncated anywhere in the columns, extra bytes, unknown column
  encodings or layout) are refused with :class:`errors.StateError`;
* the hashmap backend writes each item column of a pickle state as one pickle, of other
  serializers one chunk per item; an object that values of one key group shared is shared
  again after a restore (as in the running job), one shared inside a value too; a value that
  refers to itself round-trips through every backend; a pickled column is refused for a state
  that is not pickled.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamjob import clock as clock_mod
from streamjob import errors, keycodec, keygroups
from streamjob.duration import Duration
from streamjob.state import (
    HashMapStateBackend,
    KeyedStateBackend,
    ListStateDescriptor,
    MapStateDescriptor,
    StateKind,
    StateTtlConfig,
    StrSerializer,
    ValueStateDescriptor,
    canonical,
    canonical_columns,
    meta,
)

from .canonical_v1_writer import v1_blob, v1_body
from .conftest import BackendFactory
from .test_backend_contract_snapshots import KEYS, copy_key_groups, populate, read_all


def ttl_descriptors() -> list[Any]:
    config = StateTtlConfig.new_builder(Duration.of_seconds(60)).build()
    made: list[Any] = [
        ValueStateDescriptor("ttl-value"),
        ListStateDescriptor("ttl-list"),
        MapStateDescriptor("ttl-map", key_serializer=StrSerializer()),
    ]
    for descriptor in made:
        descriptor.enable_time_to_live(config)
    return made


def populate_ttl(backend: KeyedStateBackend, keys: list[Any]) -> None:
    value, lst, mapping = (backend.get_state(d) for d in ttl_descriptors())
    for i, key in enumerate(keys):
        backend.set_current_key(key)
        value.update((i, str(key)))
        lst.add_all([i, -i])
        mapping.put_all({"x": i, "y": [i]})


def read_ttl(backend: KeyedStateBackend, key: Any) -> tuple[Any, ...]:
    value, lst, mapping = (backend.get_state(d) for d in ttl_descriptors())
    backend.set_current_key(key)
    return value.value(), lst.get(), dict(mapping.items())


@pytest.mark.parametrize("version", [1, 2])
def test_every_kind_restores_from_either_version(
    backend_factory: BackendFactory, version: int
) -> None:
    clock = clock_mod.ManualClock(1_000_000)
    original = backend_factory(clock=clock)
    populate(original, KEYS)
    populate_ttl(original, KEYS)
    restored = backend_factory(clock=clock)
    for kg, blob in original.iter_snapshot(original.key_group_range):
        restored.restore_key_group(kg, v1_blob(blob) if version == 1 else blob)
    for key in KEYS:
        assert read_all(restored, key) == read_all(original, key), key
        assert read_ttl(restored, key) == read_ttl(original, key), key
    assert restored.num_keys() == original.num_keys()


def test_a_version_1_body_never_registered_is_written_back_unchanged(
    backend_factory: BackendFactory,
) -> None:
    original = backend_factory()
    populate(original, KEYS)
    middle = backend_factory()
    for kg, blob in original.iter_snapshot(original.key_group_range):
        middle.restore_key_group(kg, v1_blob(blob))
    kg = next(kg for kg in middle.key_group_range if len(middle.snapshot_key_group(kg)) > 100)
    _, old_sections = canonical.read_key_group(v1_blob(original.snapshot_key_group(kg)))
    blob = middle.snapshot_key_group(kg)
    assert blob[4:6] == b"\x00\x02"
    if isinstance(middle, HashMapStateBackend):  # keeps the bytes; others may re-encode them
        assert sorted(canonical.read_key_group(blob)[1]) == sorted(old_sections)
    last = backend_factory()
    copy_key_groups(middle, last)
    for key in KEYS[::3]:
        assert read_all(last, key) == read_all(original, key)


# -- the columns of version 2 ---------------------------------------------------------------------
keys_strategy = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.tuples(st.text(alphabet="ab", max_size=2), st.integers(-5, 5)),
)
namespaces_strategy = st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(4, 9)))
items_strategy = st.lists(st.binary(max_size=5), max_size=4)


def info_for(kind: StateKind, with_ttl: bool) -> meta.StateMetaInfo:
    descriptor: Any = {
        StateKind.VALUE: lambda: ValueStateDescriptor("s"),
        StateKind.LIST: lambda: ListStateDescriptor("s"),
        StateKind.MAP: lambda: MapStateDescriptor("s"),
    }[kind]()
    if with_ttl:
        descriptor.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_seconds(1)).build())
    info: meta.StateMetaInfo = descriptor.meta_info()
    return info


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from([StateKind.VALUE, StateKind.LIST, StateKind.MAP]),
    with_ttl=st.booleans(),
    entries=st.lists(st.tuples(keys_strategy, namespaces_strategy, items_strategy), max_size=12),
)
def test_columns_round_trip_any_entries(
    kind: StateKind, with_ttl: bool, entries: list[tuple[Any, Any, list[bytes]]]
) -> None:
    info = info_for(kind, with_ttl)
    writer = canonical.StateSectionWriter(info)
    expected = []
    for n, (key, namespace, values) in enumerate(entries):
        if kind is StateKind.VALUE:
            values = values[:1] or [b""]
        items = [
            (
                b"uk%d" % i if kind is StateKind.MAP else None,
                1_000 * n + i if with_ttl else None,
                value,
            )
            for i, value in enumerate(values)
        ]
        writer.entry(key, namespace, items)
        expected.append((key, namespace, items))
    body = writer.body()
    assert body[0] == canonical.LAYOUT_COLUMNS
    assert canonical.read_state_meta(body) == info
    assert list(canonical.iter_state_entries(body)) == expected
    encoded = [
        (keycodec.encode_key(key), canonical.encode_namespace(namespace), items)
        for key, namespace, items in expected
    ]
    assert list(canonical.iter_state_entries(body, decode=False)) == encoded
    assert list(canonical.iter_state_entries(v1_body(body), decode=False)) == encoded
    assert list(canonical.iter_state_entries(v1_body(body))) == expected
    copier = canonical.StateSectionWriter(info)  # as a backend storing encoded keys writes
    for key_bytes, namespace_bytes, items in encoded:
        copier.encoded_entry(key_bytes, namespace_bytes, items)
    assert list(canonical.iter_state_entries(copier.body())) == expected


def test_one_writer_takes_keys_or_their_bytes_not_both() -> None:
    writer = canonical.StateSectionWriter(info_for(StateKind.VALUE, False))
    writer.entry("k", None, [(None, None, b"")])
    with pytest.raises(TypeError, match="encoded_entry"):
        writer.encoded_entry(keycodec.encode_key("j"), canonical.VOID_NAMESPACE, [])


@pytest.mark.parametrize(
    ("keys", "joined"),
    [
        (["", "a", "ünïcödé", "日本", "a" * 300, ""], True),
        ([""], True),
        (["a\0b", "c"], False),  # a key holding NUL: keycodec chunks
        (["a", 1], False),
    ],
)
def test_str_key_columns_are_joined_by_nul(keys: list[Any], joined: bool) -> None:
    writer = canonical.StateSectionWriter(info_for(StateKind.VALUE, False))
    for key in keys:
        writer.entry(key, None, [(None, None, b"")])
    body = writer.body()
    tag = body[columns_start(body) + 8]
    assert tag == (canonical_columns.KEYS_STR if joined else canonical_columns.KEYS_ENCODED)
    assert [k for k, _, _ in canonical.iter_state_entries(body)] == keys


def sample_body(str_keys: bool = False) -> bytes:
    writer = canonical.StateSectionWriter(info_for(StateKind.LIST, True))
    writer.entry("k", None, [(None, 5, b"v1"), (None, 6, b"v2")])
    writer.entry("j" if str_keys else 3, (1, 2), [(None, 7, b"")])
    return writer.body()


def columns_start(body: bytes) -> int:
    """Where the columns start: after the layout byte, the meta length and the meta."""
    return 5 + int.from_bytes(body[1:5], "big")


@pytest.mark.parametrize("str_keys", [False, True])
def test_a_truncated_body_is_refused_wherever_it_is_cut(str_keys: bool) -> None:
    body = sample_body(str_keys)
    for cut in range(columns_start(body), len(body)):
        with pytest.raises(errors.StateError, match=r"truncated|do not add up|differ|str keys"):
            canonical.read_columns(body[:cut])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda body: body + b"\x00", "1 extra bytes"),
        (lambda body: b"\x07" + body[1:], "unknown state section layout 0x07"),
        (
            lambda body: (
                body[: columns_start(body) + 8] + b"\x09" + body[columns_start(body) + 9 :]
            ),
            "unknown key column encoding 0x09",
        ),
    ],
)
def test_damaged_bodies_are_refused(damage: Any, message: str) -> None:
    with pytest.raises(errors.StateError, match=message):
        canonical.read_columns(damage(sample_body()))


# -- pickled item columns -------------------------------------------------------------------------
def value_body(backend: KeyedStateBackend, name: str, kg: int) -> bytes:
    _, sections = canonical.read_key_group(backend.snapshot_key_group(kg))
    return dict(sections)[canonical.state_section_name(name)]


def test_pickle_states_write_one_pickle_per_column_others_one_chunk_per_item() -> None:
    backend = HashMapStateBackend(
        max_parallelism=128, key_group_range=keygroups.KeyGroupRange(0, 127)
    )
    pickled = backend.get_state(ValueStateDescriptor("pickled"))
    chunked = backend.get_state(ValueStateDescriptor("chunked", serializer=StrSerializer()))
    backend.set_current_key("k")
    pickled.update({"a": 1})
    chunked.update("text")
    kg = backend.current_key_group
    assert kg is not None
    _, columns = canonical.read_columns(value_body(backend, "pickled", kg))
    assert columns.values.objects == [{"a": 1}]
    _, columns = canonical.read_columns(value_body(backend, "chunked", kg))
    assert columns.values.chunks == [b"text"]


def test_objects_shared_by_values_of_a_key_group_stay_shared_as_in_the_running_job() -> None:
    def hashmap() -> HashMapStateBackend:
        return HashMapStateBackend(
            max_parallelism=128, key_group_range=keygroups.KeyGroupRange(0, 127)
        )

    original = hashmap()
    state = original.get_state(ValueStateDescriptor("v"))
    shared: dict[str, Any] = {"n": [1]}
    inside = [7]
    first, second, third = [k for k in range(10_000) if keygroups.assign_to_key_group(k, 128) == 0][
        :3
    ]
    for key, value in ((first, shared), (second, shared), (third, {"a": inside, "b": inside})):
        original.set_current_key(key)
        state.update(value)
    restored = hashmap()
    copy_key_groups(original, restored, [0])
    restored_state = restored.get_state(ValueStateDescriptor("v"))
    values = []
    for key in (first, second, third):
        restored.set_current_key(key)
        values.append(restored_state.value())
    assert values[0] == values[1] == shared
    assert values[0] is values[1], "the running job's two keys held one object, and still do"
    assert values[2]["a"] is values[2]["b"], "an object shared inside a value stays shared"


def test_a_value_referring_to_itself_round_trips(backend_factory: BackendFactory) -> None:
    original = backend_factory()
    state = original.get_state(ValueStateDescriptor("v"))
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    original.set_current_key("k")
    state.update(cyclic)
    kg = original.current_key_group
    assert kg is not None
    restored = backend_factory()
    copy_key_groups(original, restored, [kg])
    restored.set_current_key("k")
    value = restored.get_state(ValueStateDescriptor("v")).value()
    assert value[0] == 1 and value[1] is value


@pytest.mark.parametrize(
    "items", [[1, 2.5, "s", b"b", None, True, 2**80], [(1, "a"), [2]], []], ids=repr
)
def test_pickled_columns_read_back_their_items(items: list[Any]) -> None:
    info = ValueStateDescriptor("p").meta_info()
    body = b"".join(
        canonical_columns.body_parts(
            canonical.encode_state_meta(info),
            keys=[f"k{i}" for i in range(len(items))],
            namespaces=None,
            counts=None,
            user_keys=None,
            timestamps=None,
            values=canonical_columns.pickled_items(items, 5),
            n_items=len(items),
        )
    )
    assert canonical.read_columns(body)[1].values.objects == items


def test_a_pickled_column_is_refused_for_a_state_that_is_not_pickled() -> None:
    info = ValueStateDescriptor("j", serializer=StrSerializer()).meta_info()
    body = b"".join(
        canonical_columns.body_parts(
            canonical.encode_state_meta(info),
            keys=["k"],
            namespaces=None,
            counts=None,
            user_keys=None,
            timestamps=None,
            values=canonical_columns.pickled_items(["x"], 5),
            n_items=1,
        )
    )
    with pytest.raises(errors.StateError, match="serializer is not pickle"):
        canonical.read_columns(body)
