"""TCP channels: the two ends of one logical channel between subtasks in different processes.

They implement the runtime's ``OutputChannel`` and ``InputChannel`` protocols, so a task
cannot tell them from in-memory channels.

Flow control (credit-based, as Flink's): the receiver announces its buffer slots in the
handshake answer and returns one credit per batch its task has taken; the sender sends a batch
only with credit, else its task waits (backpressure). Events need no credit. In flight per
channel: at most ``credits`` batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from streamjob.network import frames
from streamjob.runtime.events import Batch, ChannelItem

log = logging.getLogger(__name__)


class RemoteOutputChannel:
    """The sending end: writes frames to a connected stream, waits for credit."""

    def __init__(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        credits: int,
    ) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._credits = credits
        self._sent_batches = 0
        self._credit_waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.failure: BaseException | None = None
        self._pump = asyncio.ensure_future(self._read_credits())

    def has_credit(self) -> bool:
        return self._credits > 0

    def send(self, item: ChannelItem) -> None:
        if self.failure is not None:
            raise ConnectionError(f"channel {self.name} is broken: {self.failure}")
        if item.__class__ is Batch:
            self._credits -= 1
            self._sent_batches += 1
        self._writer.write(frames.encode_item(item))

    async def wait_for_credit(self) -> None:
        while self._credits <= 0:
            if self.failure is not None:
                raise ConnectionError(f"channel {self.name} is broken: {self.failure}")
            self._credit_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._credit_waiter
            finally:
                self._credit_waiter = None
        await self._writer.drain()

    def in_flight(self) -> int:
        return self._sent_batches

    async def _read_credits(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(frames.HEADER.size)
                size, kind = frames.HEADER.unpack(header)
                payload = await self._reader.readexactly(size - 1)
                if kind != frames.CREDIT:
                    raise frames.ProtocolError(f"expected CREDIT, got frame type {kind}")
                (granted,) = frames.CREDIT_BODY.unpack(payload)
                self._credits += granted
                self._sent_batches = max(0, self._sent_batches - granted)
                self._wake()
        except (asyncio.IncompleteReadError, ConnectionError, frames.ProtocolError) as exc:
            if not self.closed:
                self.failure = exc
            self._wake()
        except asyncio.CancelledError:
            pass

    def _wake(self) -> None:
        waiter = self._credit_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        self.closed = True
        self._pump.cancel()
        try:
            await self._writer.drain()
            self._writer.close()
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class RemoteInputChannel:
    """The receiving end: a queue filled from the connection, credit returned per batch."""

    def __init__(self, name: str, credits: int) -> None:
        self.name = name
        self.credits = credits
        self._queue: deque[ChannelItem] = deque()
        self._listener: Callable[[], None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.failure: BaseException | None = None
        self._pump: asyncio.Future[None] | None = None

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pump = asyncio.ensure_future(self._read(reader))
        self.connected.set()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(frames.HEADER.size)
                size, kind = frames.HEADER.unpack(header)
                payload = await reader.readexactly(size - 1)
                self._push(frames.decode_item(kind, payload))
        except asyncio.IncompleteReadError as exc:
            if exc.partial or not self._ended():
                self.failure = ConnectionError(f"channel {self.name}: the sender went away")
                self._notify()
        except (ConnectionError, frames.ProtocolError) as exc:
            self.failure = exc
            self._notify()
        except asyncio.CancelledError:
            pass

    def _ended(self) -> bool:
        from streamjob.runtime.events import EndOfPartition

        return bool(self._queue) and isinstance(self._queue[-1], EndOfPartition)

    def _push(self, item: ChannelItem) -> None:
        was_empty = not self._queue
        self._queue.append(item)
        if was_empty:
            self._notify()

    def _notify(self) -> None:
        if self._listener is not None:
            self._listener()

    def poll(self) -> ChannelItem | None:
        if not self._queue:
            if self.failure is not None:
                raise ConnectionError(f"input channel {self.name} failed: {self.failure}")
            return None
        item = self._queue.popleft()
        if item.__class__ is Batch and self._writer is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._writer.write(frames.encode_credit(1))
        return item

    def has_data(self) -> bool:
        return bool(self._queue) or self.failure is not None

    def set_listener(self, listener: Callable[[], None]) -> None:
        self._listener = listener
        if self._queue:
            listener()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self._writer is not None:
            try:
                self._writer.close()
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
