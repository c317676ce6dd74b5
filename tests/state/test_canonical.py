"""The canonical key-group format (``streamjob.state.canonical``): layout frozen by a golden blob.

Aspects covered:

* a golden blob (header, section framing, JSON meta, entries with user keys and TTL
  timestamps, void and window namespaces): any change to the bytes is a format change and
  needs a new ``FORMAT_VERSION``;
* reading back what was written; appending a section (the operator layer's timers);
* refusal of foreign, truncated or future-version blobs with clear messages;
* the void namespace marker is distinct from every key encoding;
* the hashmap backend's snapshot decodes to the expected entries.
"""

from __future__ import annotations

import pytest

from streamjob import errors, keygroups
from streamjob.duration import Duration
from streamjob.state import (
    HashMapStateBackend,
    IntSerializer,
    MapStateDescriptor,
    StateKind,
    StateTtlConfig,
    StrSerializer,
    ValueStateDescriptor,
    canonical,
)

GOLDEN_BLOB = (
    "534a4b47000100000005000773746174652f6d000000000000013d000000ce7b226e616d65223a226d222c"
    "226b696e64223a226d6170222c2276616c75655f73657269616c697a6572223a5b22696e74222c315d2c22"
    "6b65795f73657269616c697a6572223a5b22737472222c315d2c2274746c223a7b2274746c5f6d73223a31"
    "3030302c227570646174655f74797065223a224f6e437265617465416e645772697465222c227374617465"
    "5f7669736962696c697479223a224e6576657252657475726e45787069726564222c22636c65616e75705f"
    "66756c6c5f736e617073686f74223a66616c73657d7d0000000601000000016b0000000100000000010000"
    "00016100000000000003e800000001010000000603000000010700000011040000000203000000010003"
    "000000010a00000002000000016200000000000007d000000001ff00000001630000000000000bb8000000"
    "00"
)


def golden_descriptor() -> MapStateDescriptor[str, int]:
    descriptor: MapStateDescriptor[str, int] = MapStateDescriptor(
        "m", key_serializer=StrSerializer(), value_serializer=IntSerializer()
    )
    descriptor.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_seconds(1)).build())
    return descriptor


def test_golden_blob_is_frozen() -> None:
    writer = canonical.StateSectionWriter(golden_descriptor().meta_info())
    writer.entry("k", None, [(b"a", 1000, b"\x01")])
    writer.entry(7, (0, 10), [(b"b", 2000, b"\xff"), (b"c", 3000, b"")])
    blob = canonical.build_key_group(5, [(canonical.state_section_name("m"), writer.body())])
    assert blob.hex() == GOLDEN_BLOB
    assert blob[:4] == b"SJKG"


def test_golden_blob_reads_back() -> None:
    key_group, sections = canonical.read_key_group(bytes.fromhex(GOLDEN_BLOB))
    assert key_group == 5
    ((name, body),) = sections
    assert name == "state/m"
    info = canonical.read_state_meta(body)
    assert info == golden_descriptor().meta_info()
    assert info.kind is StateKind.MAP
    assert list(canonical.iter_state_entries(body)) == [
        ("k", None, [(b"a", 1000, b"\x01")]),
        (7, (0, 10), [(b"b", 2000, b"\xff"), (b"c", 3000, b"")]),
    ]


def test_appended_sections_are_read_in_order() -> None:
    blob = canonical.build_key_group(9, [])
    blob = canonical.append_section(blob, "timers/event", b"abc")
    blob = canonical.append_section(blob, "timers/processing", b"")
    assert canonical.read_key_group(blob) == (
        9,
        [("timers/event", b"abc"), ("timers/processing", b"")],
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"SJ", "too short"),
        (b"NOPE\x00\x01\x00\x00\x00\x00", "not a streamjob key-group blob"),
        (b"SJKG\x00\x02\x00\x00\x00\x00", "format version 2"),
        (canonical.build_key_group(1, [("state/x", b"12345")])[:-1], "truncated"),
    ],
)
def test_foreign_or_damaged_blobs_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(errors.StateError, match=message):
        canonical.read_key_group(data)


def test_void_namespace_marker_is_not_a_key_encoding() -> None:
    assert canonical.encode_namespace(None) == b"\x00"
    for namespace in [0, (0, 0), ()]:
        assert canonical.encode_namespace(namespace)[:1] != b"\x00"
        assert canonical.decode_namespace(canonical.encode_namespace(namespace)) == namespace
    assert canonical.decode_namespace(b"\x00") is None


def test_hashmap_snapshot_decodes_to_its_entries() -> None:
    backend = HashMapStateBackend(
        max_parallelism=128, key_group_range=keygroups.KeyGroupRange(0, 127)
    )
    state = backend.get_state(ValueStateDescriptor("v", serializer=StrSerializer()))
    backend.set_current_key("k")
    state.update("void")
    state.set_current_namespace((0, 10))
    state.update("window")
    kg = backend.current_key_group
    assert kg is not None
    key_group, sections = canonical.read_key_group(backend.snapshot_key_group(kg))
    assert key_group == kg
    ((name, body),) = sections
    assert name == "state/v"
    assert list(canonical.iter_state_entries(body)) == [
        ("k", None, [(None, None, b"void")]),
        ("k", (0, 10), [(None, None, b"window")]),
    ]
