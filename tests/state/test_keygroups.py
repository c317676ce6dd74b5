"""Key encoding, stable hashing and Flink's key-group arithmetic (DESIGN.md section 5).

Aspects covered:

* Flink's vectors: ``murmur_mix`` of Java hash codes, key group and operator index at
  max parallelism 128, key-group ranges for p = 4 and p = 3, the default max parallelism table;
* frozen golden vectors per key type (key -> encoded bytes -> stable hash -> key group): a
  change to the encoding or the hash orphans every checkpoint, so these values never change;
* encode/decode round trip for any supported key (property test);
* refusal of bool, float, None and list keys, with a message saying what to do;
* ``KeyGroupAssigner`` agrees with ``assign_to_key_group``, in batches and single lookups,
  across cache overflows.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamjob import errors, keycodec, keygroups

# -- Flink's vectors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("java_hash", "mixed", "key_group", "subtask"),
    [
        (0, 593689054, 94, 2),
        (42, 1134849565, 29, 0),
        (-7, 206585249, 33, 1),
        (99162322, 1715862179, 35, 1),  # "hello".hashCode()
    ],
)
def test_flink_murmur_mix_key_group_and_operator_index(
    java_hash: int, mixed: int, key_group: int, subtask: int
) -> None:
    assert keygroups.murmur_mix(java_hash) == mixed
    assert keygroups.key_group_for_hash(java_hash, 128) == key_group
    assert keygroups.operator_index_for_key_group(128, 4, key_group) == subtask


def test_murmur_mix_is_never_negative() -> None:
    rng = random.Random(7)
    for code in [-(2**31), 2**31 - 1, -1, *(rng.randint(-(2**31), 2**31 - 1) for _ in range(500))]:
        assert keygroups.murmur_mix(code) >= 0


@pytest.mark.parametrize(
    ("parallelism", "ranges"),
    [
        (4, [(0, 31), (32, 63), (64, 95), (96, 127)]),
        (3, [(0, 42), (43, 85), (86, 127)]),
        (1, [(0, 127)]),
    ],
)
def test_key_group_ranges_at_max_parallelism_128(
    parallelism: int, ranges: list[tuple[int, int]]
) -> None:
    got = keygroups.key_group_ranges(parallelism, 128)
    assert [(r.start, r.end) for r in got] == ranges
    for index, kg_range in enumerate(got):
        for kg in kg_range:
            assert keygroups.operator_index_for_key_group(128, parallelism, kg) == index


@pytest.mark.parametrize(
    ("parallelism", "max_parallelism"),
    [
        (1, 128),
        (4, 128),
        (85, 128),
        (86, 256),
        (100, 256),
        (171, 256),
        (172, 512),
        (21845, 32768),
        (21846, 32768),
        (40000, 32768),
    ],
)
def test_default_max_parallelism(parallelism: int, max_parallelism: int) -> None:
    assert keygroups.default_max_parallelism(parallelism) == max_parallelism


# -- golden vectors (frozen: never update these to make a test pass) ------------------------

GOLDEN: list[tuple[Any, str, int, int]] = [
    ("hello", "010000000568656c6c6f", -1397243040, 78),
    ("", "0100000000", -79503699, 9),
    ("naïve-日本-🙂", "01000000126e61c3af76652de697a5e69cac2df09f9982", 1634619775, 109),
    (b"\x00\xffab", "020000000400ff6162", 1555952791, 27),
    (b"", "0200000000", -1125997443, 7),
    (0, "030000000100", 776856140, 74),
    (42, "03000000012a", -168416358, 82),
    (-7, "0300000001f9", -366171916, 23),
    (-1, "0300000001ff", 55512513, 23),
    (127, "03000000017f", -285765919, 62),
    (128, "03000000020080", 1119392429, 34),
    (-128, "0300000002ff80", -778276897, 10),
    (-129, "0300000002ff7f", -56721326, 46),
    (2**64, "0300000009010000000000000000", 1186227093, 127),
    (-(2**100), "030000000df0000000000000000000000000", 553204711, 127),
    (
        ("user", (1, b"x"), -5),
        "040000000301000000047573657204000000020300000001010200000001780300000001fb",
        84917252,
        123,
    ),
    ((), "0400000000", 866275805, 5),
]


@pytest.mark.parametrize(("key", "hex_bytes", "key_hash", "key_group"), GOLDEN, ids=repr)
def test_golden_vectors(key: Any, hex_bytes: str, key_hash: int, key_group: int) -> None:
    encoded = keycodec.encode_key(key)
    assert encoded.hex() == hex_bytes
    assert keycodec.stable_hash(key) == key_hash
    assert keygroups.assign_to_key_group(key, 128) == key_group
    assert keycodec.decode_key(encoded) == key


# -- round trip and refusals ----------------------------------------------------------------

KEYS = st.recursive(
    st.text() | st.binary() | st.integers() | st.integers(min_value=-(2**200), max_value=2**200),
    lambda children: st.lists(children, max_size=4).map(tuple),
    max_leaves=12,
)


@given(KEYS)
def test_encode_decode_round_trip(key: Any) -> None:
    encoded = keycodec.encode_key(key)
    decoded = keycodec.decode_key(encoded)
    assert decoded == key
    assert type(decoded) is type(key)
    assert keycodec.encode_key(decoded) == encoded
    assert -(2**31) <= keycodec.stable_hash(key) < 2**31
    assert 0 <= keygroups.assign_to_key_group(key, 128) < 128


@given(KEYS, KEYS)
def test_distinct_keys_encode_distinctly(a: Any, b: Any) -> None:
    if a != b:
        assert keycodec.encode_key(a) != keycodec.encode_key(b)


@pytest.mark.parametrize("key", [True, False, 1.0, 0.5, None, [1, 2], {"a": 1}, ("ok", 1.5)])
def test_unsupported_keys_are_refused_with_advice(key: Any) -> None:
    with pytest.raises(errors.KeyTypeError) as info:
        keycodec.encode_key(key)
    message = str(info.value)
    assert "keys must be str, bytes, int or tuples" in message
    assert "bool, float and None are refused" in message


def test_decode_refuses_trailing_and_unknown_bytes() -> None:
    with pytest.raises(ValueError, match="trailing"):
        keycodec.decode_key(keycodec.encode_key("a") + b"\x00")
    with pytest.raises(ValueError, match="unknown key tag"):
        keycodec.decode_key(b"\x09\x00\x00\x00\x00")
    with pytest.raises(ValueError, match="truncated"):
        keycodec.decode_key(keycodec.encode_key("abc")[:-1])


# -- the partitioner's cached assigner ------------------------------------------------------


def random_keys(rng: random.Random, count: int) -> list[Any]:
    makers = [
        lambda: f"user-{rng.randint(0, 500)}",
        lambda: rng.randint(-(2**40), 2**40),
        lambda: rng.randbytes(rng.randint(0, 6)),
        lambda: (rng.choice("abc"), rng.randint(0, 50)),
    ]
    return [rng.choice(makers)() for _ in range(count)]


@pytest.mark.parametrize("max_parallelism", [128, 4096, 32768])
def test_assigner_matches_assign_to_key_group_across_cache_overflows(
    max_parallelism: int,
) -> None:
    rng = random.Random(max_parallelism)
    assigner = keygroups.KeyGroupAssigner(max_parallelism, cache_size=16)
    for _ in range(20):
        keys = random_keys(rng, 100)
        expected = [keygroups.assign_to_key_group(k, max_parallelism) for k in keys]
        assert assigner.key_groups(keys) == expected
        assert [assigner.key_group(k) for k in keys] == expected
        assert len(assigner._cache) <= 16


def test_assigner_refuses_unhashable_and_unsupported_keys() -> None:
    assigner = keygroups.KeyGroupAssigner(128)
    with pytest.raises(errors.KeyTypeError):
        assigner.key_groups(["ok", [1, 2]])
    with pytest.raises(errors.KeyTypeError):
        assigner.key_group(1.5)
    with pytest.raises(errors.KeyTypeError):
        assigner.key_group(True)


def test_an_assigner_refuses_bool_keys_whatever_other_assigners_cached() -> None:
    """``True == 1`` as dict keys: caches are per assigner, so a job's refusal of bool keys
    does not depend on which jobs ran before in the process."""
    keygroups.KeyGroupAssigner(128).key_groups([1, 0])
    with pytest.raises(errors.KeyTypeError):
        keygroups.KeyGroupAssigner(128).key_groups([True])
