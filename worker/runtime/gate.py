"""The input gate: one task's input channels, read round-robin, with per-channel blocking.

Aligned checkpoints block a channel that delivered barrier *n* until barrier *n* arrived on all
others; a blocked channel keeps its data queued (backpressure does the rest). Finished channels
(end of partition) drop out. The gate wakes the task's mailbox when data arrives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from streamjob.runtime.channels import InputChannel
from streamjob.runtime.events import ChannelItem


class InputGate:
    """Round-robin reader over ``channels``; ``input_of[i]`` is channel i's logical input."""

    def __init__(
        self,
        channels: Sequence[InputChannel],
        input_of: Sequence[int],
        wake: Callable[[], None],
    ) -> None:
        self.channels = list(channels)
        self.input_of = list(input_of)
        self._wake = wake
        self._ready: deque[int] = deque()
        self._queued = [False] * len(self.channels)
        self._blocked = [False] * len(self.channels)
        self.finished = [False] * len(self.channels)
        for index, channel in enumerate(self.channels):
            channel.set_listener(self._listener_for(index))

    def _listener_for(self, index: int) -> Callable[[], None]:
        def listener() -> None:
            if not self._queued[index] and not self._blocked[index]:
                self._queued[index] = True
                self._ready.append(index)
                self._wake()

        return listener

    def poll(self) -> tuple[int, ChannelItem] | None:
        """Next item from an unblocked channel with data, or None."""
        ready = self._ready
        while ready:
            index = ready[0]
            channel = self.channels[index]
            item = channel.poll()
            if item is None:
                ready.popleft()
                self._queued[index] = False
                continue
            if channel.has_data():
                ready.rotate(-1)
            else:
                ready.popleft()
                self._queued[index] = False
            return index, item
        return None

    def has_ready(self) -> bool:
        return bool(self._ready)

    def block(self, index: int) -> None:
        self._blocked[index] = True
        if self._queued[index]:
            self._queued[index] = False
            self._ready.remove(index)

    def is_blocked(self, index: int) -> bool:
        return self._blocked[index]

    def unblock_all(self) -> None:
        for index, blocked in enumerate(self._blocked):
            if blocked:
                self._blocked[index] = False
                if self.channels[index].has_data() and not self._queued[index]:
                    self._queued[index] = True
                    self._ready.append(index)
        if self._ready:
            self._wake()

    def mark_finished(self, index: int) -> None:
        self.finished[index] = True

    def all_finished(self) -> bool:
        return all(self.finished)

    def active_channels(self) -> list[int]:
        return [i for i, done in enumerate(self.finished) if not done]
