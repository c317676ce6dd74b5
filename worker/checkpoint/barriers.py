"""Barrier handling inside a task: aligned (exactly-once) or tracked (at-least-once).

Aligned: the first barrier *n* starts an alignment; every channel that delivered barrier *n*
is blocked (its later records wait) until barrier *n* arrived on all channels still open; then
the task snapshots, forwards the barrier and unblocks. A newer barrier aborts an unfinished
alignment (its checkpoint is declined by the coordinator's timeout or by a newer trigger).

At-least-once: no channel is blocked; the task snapshots when barrier *n* has arrived on all
open channels. Records after the barrier may be in the snapshot's state and be replayed too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from streamjob.runtime.events import CheckpointBarrier

if TYPE_CHECKING:
    from streamjob.runtime.task import Task


class BarrierAligner:
    def __init__(
        self,
        on_aligned: Callable[[Task, CheckpointBarrier], None],
        *,
        exactly_once: bool = True,
    ) -> None:
        self._on_aligned = on_aligned
        self._exactly_once = exactly_once
        self._current: CheckpointBarrier | None = None
        self._received: set[int] = set()
        self.last_completed_id = 0

    def on_barrier(self, task: Task, channel: int, barrier: CheckpointBarrier) -> None:
        if barrier.checkpoint_id <= self.last_completed_id:
            return  # stale barrier of an older checkpoint
        current = self._current
        if current is None or barrier.checkpoint_id > current.checkpoint_id:
            if current is not None:
                self._reset(task)  # a newer checkpoint overtook an unfinished alignment
            self._current = barrier
        elif barrier.checkpoint_id < current.checkpoint_id:
            return
        self._received.add(channel)
        if self._exactly_once and self._barrier_options_aligned(barrier):
            assert task.gate is not None
            task.gate.block(channel)
        self._maybe_complete(task)

    def on_channel_finished(self, task: Task, channel: int) -> None:
        if self._current is not None:
            self._maybe_complete(task)

    def _barrier_options_aligned(self, barrier: CheckpointBarrier) -> bool:
        return barrier.options.aligned

    def _maybe_complete(self, task: Task) -> None:
        current = self._current
        assert current is not None and task.gate is not None
        open_channels = set(task.gate.active_channels())
        if open_channels <= self._received:
            self._reset(task)
            self.last_completed_id = current.checkpoint_id
            self._on_aligned(task, current)

    def _reset(self, task: Task) -> None:
        self._current = None
        self._received = set()
        if task.gate is not None:
            task.gate.unblock_all()
