"""Key groups: Flink's ``KeyGroupRangeAssignment`` arithmetic, ported exactly.

A key belongs to one of ``max_parallelism`` key groups for life; a key group belongs to the
subtask whose contiguous range contains it under the current parallelism. That is what lets any
parallelism restore any checkpoint.

    key_group(key)          = murmur_mix(stable_hash(key)) % max_parallelism
    operator_index(kg)      = kg * parallelism // max_parallelism
    key_group_range(i)      = [(i*maxP + p - 1) // p, ((i+1)*maxP - 1) // p]   (inclusive)
    default max_parallelism = min(max(round_up_pow2(p + p//2), 128), 32768)

:class:`KeyGroupAssigner` adds the bounded per-key cache that the partitioner uses so a hot key
costs one dict lookup instead of an encode, a CRC and a murmur mix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from streamjob import errors, keycodec

UPPER_BOUND_MAX_PARALLELISM = 1 << 15
DEFAULT_LOWER_BOUND_MAX_PARALLELISM = 1 << 7
_M32 = 0xFFFFFFFF


def _rotl32(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _M32


def murmur_mix(code: int) -> int:
    """Flink's ``MathUtils.murmurHash(int)``: one-block MurmurHash3_32, made non-negative."""
    h = (code & _M32) * 0xCC9E2D51 & _M32
    h = _rotl32(h, 15)
    h = h * 0x1B873593 & _M32
    h = _rotl32(h, 13)
    h = (h * 5 + 0xE6546B64) & _M32
    h ^= 4
    h ^= h >> 16
    h = h * 0x85EBCA6B & _M32
    h ^= h >> 13
    h = h * 0xC2B2AE35 & _M32
    h ^= h >> 16
    signed = keycodec.to_int32(h)
    if signed >= 0:
        return signed
    if signed != -0x8000_0000:
        return -signed
    return 0


def key_group_for_hash(key_hash: int, max_parallelism: int) -> int:
    return murmur_mix(key_hash) % max_parallelism


def assign_to_key_group(key: Any, max_parallelism: int) -> int:
    return murmur_mix(keycodec.stable_hash(key)) % max_parallelism


def operator_index_for_key_group(max_parallelism: int, parallelism: int, key_group: int) -> int:
    return key_group * parallelism // max_parallelism


def round_up_to_power_of_two(value: int) -> int:
    return 1 if value <= 1 else 1 << (value - 1).bit_length()


def default_max_parallelism(parallelism: int) -> int:
    candidate = round_up_to_power_of_two(parallelism + parallelism // 2)
    return min(max(candidate, DEFAULT_LOWER_BOUND_MAX_PARALLELISM), UPPER_BOUND_MAX_PARALLELISM)


def check_parallelism(parallelism: int, max_parallelism: int) -> None:
    if not 1 <= max_parallelism <= UPPER_BOUND_MAX_PARALLELISM:
        raise errors.JobDefinitionError(
            f"max_parallelism {max_parallelism} is outside [1, {UPPER_BOUND_MAX_PARALLELISM}]"
        )
    if not 1 <= parallelism <= max_parallelism:
        raise errors.JobDefinitionError(
            f"parallelism {parallelism} must be between 1 and max_parallelism "
            f"{max_parallelism}; raise max_parallelism (only possible for a job without state "
            "to restore) or lower the parallelism"
        )


@dataclass(frozen=True, slots=True)
class KeyGroupRange:
    """An inclusive, contiguous range of key groups; empty when ``end < start``."""

    start: int
    end: int

    @classmethod
    def of_operator(cls, index: int, parallelism: int, max_parallelism: int) -> KeyGroupRange:
        check_parallelism(parallelism, max_parallelism)
        if not 0 <= index < parallelism:
            raise ValueError(f"operator index {index} outside [0, {parallelism})")
        start = (index * max_parallelism + parallelism - 1) // parallelism
        end = ((index + 1) * max_parallelism - 1) // parallelism
        return cls(start, end)

    def __len__(self) -> int:
        return max(0, self.end - self.start + 1)

    def __contains__(self, key_group: object) -> bool:
        return isinstance(key_group, int) and self.start <= key_group <= self.end

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.end + 1))

    def intersection(self, other: KeyGroupRange) -> KeyGroupRange:
        return KeyGroupRange(max(self.start, other.start), min(self.end, other.end))

    def to_list(self) -> list[int]:
        return [self.start, self.end]


def key_group_ranges(parallelism: int, max_parallelism: int) -> list[KeyGroupRange]:
    return [KeyGroupRange.of_operator(i, parallelism, max_parallelism) for i in range(parallelism)]


class KeyGroupAssigner:
    """Maps keys to key groups through a bounded cache (cleared whole when full).

    Used once per record, at the partitioner; the result travels with the batch so the
    receiving operator never recomputes it. Each assigner has its own cache: a cache shared
    across jobs would answer ``True`` or ``1.0`` from an entry for ``1`` (equal as dict keys),
    so whether such a key is refused would depend on what ran before.
    """

    __slots__ = ("_cache", "_limit", "max_parallelism")

    def __init__(self, max_parallelism: int, *, cache_size: int = 1 << 18) -> None:
        self.max_parallelism = max_parallelism
        self._cache: dict[Any, int] = {}
        self._limit = cache_size

    def key_group(self, key: Any) -> int:
        kg = self._cache.get(key)
        if kg is None:
            kg = self._miss(key)
        return kg

    def key_groups(self, keys: Sequence[Any]) -> list[int]:
        """Key groups of a batch of keys: a C-level map over the cache, then fix the misses."""
        try:
            kgs: list[Any] = list(map(self._cache.get, keys))
        except TypeError:  # an unhashable key: find it and say which
            kgs = [None] * len(keys)
        if None in kgs:
            miss = self._miss
            for i, kg in enumerate(kgs):
                if kg is None:
                    kgs[i] = miss(keys[i])
        return kgs

    def _miss(self, key: Any) -> int:
        try:
            kg = murmur_mix(keycodec.stable_hash(key)) % self.max_parallelism
        except TypeError as exc:  # unhashable keys surface here or at the dict lookup
            raise errors.KeyTypeError(f"key {key!r} cannot be used as a key: {exc}") from exc
        if len(self._cache) >= self._limit:
            self._cache.clear()
        self._cache[key] = kg
        return kg
