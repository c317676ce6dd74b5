"""Channels between subtasks: the sending end, the receiving end, and the in-memory pair.

Flow control is credit-based: a channel holds at most ``credits`` record batches; a writer
without credit waits, which back-pressures its task and, transitively, the sources. Control
events take no credit (they are few and must never deadlock behind records).

The runtime only talks to :class:`OutputChannel` and :class:`InputChannel`; the local
(:class:`LocalChannel`) and TCP implementations (distributed runtime) both provide them. An
in-process channel never serializes: records are shared, so they must be treated as immutable.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol

from streamjob.runtime.events import Batch, ChannelItem

DEFAULT_CREDITS = 4


class OutputChannel(Protocol):
    def has_credit(self) -> bool: ...

    def send(self, item: ChannelItem) -> None:
        """Send without waiting; a batch needs ``has_credit()`` first."""

    async def wait_for_credit(self) -> None: ...

    def in_flight(self) -> int:
        """Batches sent and not yet taken by the receiver."""
        ...


class InputChannel(Protocol):
    def poll(self) -> ChannelItem | None: ...

    def set_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the channel goes from empty to non-empty."""

    def has_data(self) -> bool: ...


class LocalChannel:
    """An in-memory channel with ``credits`` batch slots; both ends in one event loop."""

    __slots__ = ("_batches", "_credits", "_listener", "_queue", "_waiter", "name")

    def __init__(self, credits: int = DEFAULT_CREDITS, name: str = "") -> None:
        self._queue: deque[ChannelItem] = deque()
        self._credits = credits
        self._batches = 0
        self._waiter: asyncio.Future[None] | None = None
        self._listener: Callable[[], None] | None = None
        self.name = name

    # -- sending end --------------------------------------------------------------------
    def has_credit(self) -> bool:
        return self._batches < self._credits

    def send(self, item: ChannelItem) -> None:
        if item.__class__ is Batch:
            self._batches += 1
        was_empty = not self._queue
        self._queue.append(item)
        if was_empty and self._listener is not None:
            self._listener()

    async def wait_for_credit(self) -> None:
        while self._batches >= self._credits:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def in_flight(self) -> int:
        return self._batches

    # -- receiving end ------------------------------------------------------------------
    def poll(self) -> ChannelItem | None:
        if not self._queue:
            return None
        item = self._queue.popleft()
        if item.__class__ is Batch:
            self._batches -= 1
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        return item

    def has_data(self) -> bool:
        return bool(self._queue)

    def set_listener(self, listener: Callable[[], None]) -> None:
        self._listener = listener
        if self._queue:
            listener()
