"""The canonical key-group format (``streamjob.state.canonical``): layout frozen by golden blobs.

Aspects covered:

* golden version-2 blobs (header, section framing, layout byte, JSON meta, and every column
  encoding: keys of mixed types or all str, void and window namespaces, item counts listed or
  one each, user keys, TTL timestamps, values): any change to the bytes is a format change and
  needs a new ``FORMAT_VERSION``;
* the golden version-1 blob (what streamjob wrote before version 2) still reads back to the
  same entries; a golden version-2 blob with pickled item columns reads back;
* reading back what was written; appending a section (the operator layer's timers);
* refusal of foreign, truncated or future-version blobs with clear messages;
* the void namespace marker is distinct from every key encoding;
* the hashmap backend's snapshot decodes to the expected entries.

Reading version 1 and 2 through the backends: ``test_canonical_versions.py``.
"""

from __future__ import annotations

import pickle

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
    "534a4b47000200000005000773746174652f6d000000000000014b02000000ce7b226e616d65223a226d22"
    "2c226b696e64223a226d6170222c2276616c75655f73657269616c697a6572223a5b22696e74222c315d2c"
    "226b65795f73657269616c697a6572223a5b22737472222c315d2c2274746c223a7b2274746c5f6d73223a"
    "313030302c227570646174655f74797065223a224f6e437265617465416e645772697465222c2273746174"
    "655f7669736962696c697479223a224e6576657252657475726e45787069726564222c22636c65616e7570"
    "5f66756c6c5f736e617073686f74223a66616c73657d7d0000000200000003000000000600000006010000"
    "00016b03000000010700000000010000001100040000000203000000010003000000010a00000000010000"
    "00020000000001000000010000000161626300000000000003e800000000000007d00000000000000bb800"
    "00000001000000010000000001ff"
)
"""Version 2 (columns): what :func:`test_golden_blob_is_frozen` writes (keys of mixed types,
void and window namespaces, item counts, user keys, TTL timestamps, values as chunks)."""

GOLDEN_STR_KEYS_BLOB = (
    "534a4b47000200000003000773746174652f73000000000000007f02000000597b226e616d65223a227322"
    "2c226b696e64223a2276616c7565222c2276616c75655f73657269616c697a6572223a5b22737472222c31"
    "5d2c226b65795f73657269616c697a6572223a6e756c6c2c2274746c223a6e756c6c7d0000000200000002"
    "0100000000000000046100c3bc020300000000010000000078"
)
"""Version 2, the other column encodings: str keys (joined by NUL), every namespace void, one
item per entry: a str ValueState with "a" -> "x" and "ü" -> ""."""

GOLDEN_BLOB_V1 = (
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
"""Version 1 (entries one after another), as streamjob wrote it before version 2: still read."""

GOLDEN_PICKLED_BLOB = (
    "534a4b47000200000009000773746174652f7000000000000000e902000000627b226e616d65223a227022"
    "2c226b696e64223a226d6170222c2276616c75655f73657269616c697a6572223a5b227069636b6c65222c"
    "315d2c226b65795f73657269616c697a6572223a5b227069636b6c65222c315d2c2274746c223a6e756c6c"
    "7d000000020000000300000000060000000601000000016b03000000010302000000000200000001040000"
    "00000000001d80059512000000000000005d94288c0174944b0186948c0175944e652e0400000000000000"
    "2c80059521000000000000005d94285d94284b014b02657d948c017894473ff8000000000000738c017694"
    "652e"
)
"""Version 2 with pickled item columns: a MapState with pickle user keys and values, key "k"
-> {("t", 1): [1, 2], "u": {"x": 1.5}} and key 3 -> {None: "v"}, as the hashmap backend
writes it (the pickle bytes may differ between Python versions, so this is only read)."""


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


def test_golden_str_keys_blob_is_frozen() -> None:
    writer = canonical.StateSectionWriter(
        ValueStateDescriptor("s", serializer=StrSerializer()).meta_info()
    )
    writer.entry("a", None, [(None, None, b"x")])
    writer.entry("ü", None, [(None, None, b"")])
    blob = canonical.build_key_group(3, [(canonical.state_section_name("s"), writer.body())])
    assert blob.hex() == GOLDEN_STR_KEYS_BLOB
    _, ((_, body),) = canonical.read_key_group(blob)
    assert list(canonical.iter_state_entries(body)) == [
        ("a", None, [(None, None, b"x")]),
        ("ü", None, [(None, None, b"")]),
    ]


@pytest.mark.parametrize("golden", [GOLDEN_BLOB, GOLDEN_BLOB_V1], ids=["v2", "v1"])
def test_golden_blob_reads_back(golden: str) -> None:
    key_group, sections = canonical.read_key_group(bytes.fromhex(golden))
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


def test_golden_pickled_blob_reads_back() -> None:
    key_group, sections = canonical.read_key_group(bytes.fromhex(GOLDEN_PICKLED_BLOB))
    assert key_group == 9
    ((name, body),) = sections
    assert name == "state/p"
    info, columns = canonical.read_columns(body)
    assert info == MapStateDescriptor("p").meta_info()
    assert columns.keys == ["k", 3]
    assert columns.counts == [2, 1]
    assert columns.user_keys is not None
    assert columns.user_keys.objects == [("t", 1), "u", None]
    assert columns.values.objects == [[1, 2], {"x": 1.5}, "v"]
    entries = list(canonical.iter_state_entries(body))  # items as each one's pickle
    assert [(k, ns, len(items)) for k, ns, items in entries] == [("k", None, 2), (3, None, 1)]
    assert pickle.loads(entries[0][2][1][2]) == {"x": 1.5}


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
        (b"SJKG\x00\x03\x00\x00\x00\x00", "format version 3"),
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
