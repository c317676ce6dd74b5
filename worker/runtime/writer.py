"""The record writer: partitions a task's output batches onto its output channels.

Operators run synchronously, so emitting never waits: sub-batches accumulate per channel until
``batch_size`` records, then go out if the channel has credit, else into a pending queue that
the task drains (awaiting credit) before it takes its next input. Per batch, not per record,
and the only place a task waits on its downstream.

Events are broadcast to every channel after the buffered records (order is preserved).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from streamjob.runtime.channels import OutputChannel
from streamjob.runtime.events import Batch, ChannelItem, ControlEvent
from streamjob.runtime.partitioners import Partitioner

DEFAULT_BATCH_SIZE = 1024


def merge_batches(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    records: list[Any] = []
    for b in batches:
        records.extend(b.records)
    timestamps: list[int] | None = None
    if batches[0].timestamps is not None:
        timestamps = []
        for b in batches:
            timestamps.extend(b.timestamps or ())
    keys: list[Any] | None = None
    key_groups: list[int] | None = None
    if batches[0].keys is not None:
        keys, key_groups = [], []
        for b in batches:
            keys.extend(b.keys or ())
            key_groups.extend(b.key_groups or ())
    return Batch(records, timestamps, keys, key_groups)


class RecordWriter:
    """Output of one job edge for one subtask: partitioner + per-channel buffers."""

    def __init__(
        self,
        partitioner: Partitioner,
        channels: Sequence[OutputChannel],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.partitioner = partitioner
        self.channels = list(channels)
        self.batch_size = batch_size
        n = len(self.channels)
        self._buffers: list[list[Batch]] = [[] for _ in range(n)]
        self._counts = [0] * n
        self._pending: list[deque[ChannelItem]] = [deque() for _ in range(n)]
        self.has_pending = False
        self.records_out = 0
        #: seconds spent waiting for credit (backpressure from downstream)
        self.backpressured_s = 0.0

    def emit(self, batch: Batch) -> None:
        self.records_out += len(batch.records)
        size = self.batch_size
        for target, sub in self.partitioner.partition(batch):
            self._buffers[target].append(sub)
            count = self._counts[target] + len(sub.records)
            self._counts[target] = count
            if count >= size:
                self._ship(target)

    def _ship(self, target: int) -> None:
        buffered = self._buffers[target]
        if not buffered:
            return
        batch = merge_batches(buffered)
        self._buffers[target] = []
        self._counts[target] = 0
        channel = self.channels[target]
        pending = self._pending[target]
        if not pending and channel.has_credit():
            channel.send(batch)
        else:
            pending.append(batch)
            self.has_pending = True

    def flush(self) -> None:
        """Ship every partial buffer (linger expired, input idle, or an event follows)."""
        for target, count in enumerate(self._counts):
            if count:
                self._ship(target)

    def broadcast_event(self, event: ControlEvent) -> None:
        self.flush()
        for target, channel in enumerate(self.channels):
            pending = self._pending[target]
            if pending:
                pending.append(event)
            else:
                channel.send(event)

    async def drain(self) -> None:
        """Send everything pending, waiting for credit as needed (backpressure)."""
        if not self.has_pending:
            return
        for target, pending in enumerate(self._pending):
            channel = self.channels[target]
            while pending:
                item = pending[0]
                if item.__class__ is Batch and not channel.has_credit():
                    started = time.perf_counter()
                    await channel.wait_for_credit()
                    self.backpressured_s += time.perf_counter() - started
                pending.popleft()
                channel.send(item)
        self.has_pending = False

    def buffered_records(self) -> int:
        return sum(self._counts) + sum(
            len(i.records) for p in self._pending for i in p if isinstance(i, Batch)
        )
