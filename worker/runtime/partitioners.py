"""Partitioners: which downstream channel each record of a batch goes to.

A partitioner turns one outgoing batch into per-channel sub-batches. The key-group partitioner
is where a record's key and key group are computed, once, through a bounded cache; both then
travel with the batch to the keyed operator.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from streamjob import errors, keygroups
from streamjob.runtime.events import Batch


class PartitionKind(StrEnum):
    FORWARD = "forward"
    HASH = "hash"
    REBALANCE = "rebalance"
    BROADCAST = "broadcast"


class Partitioner:
    """Splits batches over ``num_channels`` channels."""

    kind: PartitionKind

    def partition(self, batch: Batch) -> list[tuple[int, Batch]]:
        raise NotImplementedError


class ForwardPartitioner(Partitioner):
    kind = PartitionKind.FORWARD

    def partition(self, batch: Batch) -> list[tuple[int, Batch]]:
        return [(0, batch)]


class RebalancePartitioner(Partitioner):
    """Whole batches round-robin (per batch, not per record: the cost stays per batch)."""

    kind = PartitionKind.REBALANCE

    def __init__(self, num_channels: int, start: int = 0) -> None:
        self.num_channels = num_channels
        self._next = start % num_channels

    def partition(self, batch: Batch) -> list[tuple[int, Batch]]:
        target = self._next
        self._next = (target + 1) % self.num_channels
        return [(target, batch)]


class BroadcastPartitioner(Partitioner):
    kind = PartitionKind.BROADCAST

    def __init__(self, num_channels: int) -> None:
        self.num_channels = num_channels

    def partition(self, batch: Batch) -> list[tuple[int, Batch]]:
        return [(i, batch) for i in range(self.num_channels)]


class KeyGroupPartitioner(Partitioner):
    """Routes each record to ``operator_index(key_group(key))`` and attaches keys and groups."""

    kind = PartitionKind.HASH

    def __init__(
        self,
        key_selector: Callable[[Any], Any],
        num_channels: int,
        max_parallelism: int,
        operator_name: str = "key_by",
    ) -> None:
        self.key_selector = key_selector
        self.num_channels = num_channels
        self.assigner = keygroups.KeyGroupAssigner(max_parallelism)
        self._target_of = [
            keygroups.operator_index_for_key_group(max_parallelism, num_channels, kg)
            for kg in range(max_parallelism)
        ]
        self._name = operator_name

    def keys_of(self, records: list[Any]) -> list[Any]:
        selector = self.key_selector
        try:
            return list(map(selector, records))
        except Exception as exc:
            from streamjob.runtime.failures import user_error

            keys: list[Any] = []
            for record in records:  # find the record that failed, for the message
                try:
                    keys.append(selector(record))
                except Exception:
                    raise user_error(exc, self._name + " key selector", record) from exc
            raise user_error(exc, self._name + " key selector", None) from exc

    def partition(self, batch: Batch) -> list[tuple[int, Batch]]:
        records = batch.records
        keys = self.keys_of(records)
        try:
            kgs = self.assigner.key_groups(keys)
        except errors.KeyTypeError as exc:
            raise errors.KeyTypeError(
                f"{self._name}: the key selector returned an unusable key: {exc}"
            ) from None
        if self.num_channels == 1:
            return [(0, Batch(records, batch.timestamps, keys, kgs))]
        target_of = self._target_of
        n = self.num_channels
        out_records: list[list[Any]] = [[] for _ in range(n)]
        out_keys: list[list[Any]] = [[] for _ in range(n)]
        out_kgs: list[list[int]] = [[] for _ in range(n)]
        timestamps = batch.timestamps
        if timestamps is None:
            for record, key, kg in zip(records, keys, kgs, strict=True):
                t = target_of[kg]
                out_records[t].append(record)
                out_keys[t].append(key)
                out_kgs[t].append(kg)
            return [
                (t, Batch(out_records[t], None, out_keys[t], out_kgs[t]))
                for t in range(n)
                if out_records[t]
            ]
        out_ts: list[list[int]] = [[] for _ in range(n)]
        for record, ts, key, kg in zip(records, timestamps, keys, kgs, strict=True):
            t = target_of[kg]
            out_records[t].append(record)
            out_ts[t].append(ts)
            out_keys[t].append(key)
            out_kgs[t].append(kg)
        return [
            (t, Batch(out_records[t], out_ts[t], out_keys[t], out_kgs[t]))
            for t in range(n)
            if out_records[t]
        ]
