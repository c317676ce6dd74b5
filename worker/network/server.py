"""Connecting channels: the TaskManager's data server and the sender's handshake.

Every data connection starts with a HELLO naming job, JobManager epoch, deployment attempt,
edge and subtasks. The data server answers ACCEPT (with the receiver's credits) only when job,
epoch and attempt are the current ones and the receiving channel is registered; anything
stale is REJECTed and closed (fencing: a zombie sender of an old attempt cannot feed a new
deployment).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from streamjob.network import frames
from streamjob.network.channels import RemoteInputChannel, RemoteOutputChannel

log = logging.getLogger(__name__)

#: how long a sender may wait for this process to receive its part of the deployment
REGISTRATION_WAIT_S = 5.0


class ChannelRejected(ConnectionError):
    """The receiver refused the handshake (stale epoch or attempt, unknown channel)."""


@dataclass
class Fence:
    job_id: str
    epoch: str
    attempt: int


class DataServer:
    """Accepts data connections for the input channels of this process's subtasks."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        registration_wait_s: float = REGISTRATION_WAIT_S,
    ) -> None:
        self.registration_wait_s = registration_wait_s
        self.host = host
        self.port = port
        self.fence: Fence | None = None
        self._expected: dict[tuple[int, int, int, int], RemoteInputChannel] = {}
        self._registered = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self.rejected = 0

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        return self.host, self.port

    async def expect(self, key: tuple[int, int, int, int], channel: RemoteInputChannel) -> None:
        async with self._registered:
            self._expected[key] = channel
            self._registered.notify_all()

    async def set_fence(self, fence: Fence) -> None:
        """A new deployment: forget channels of older attempts."""
        async with self._registered:
            self.fence = fence
            stale = [k for k in self._expected if k[0] != fence.attempt]
            for key in stale:
                del self._expected[key]
            self._registered.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            header = await reader.readexactly(frames.HEADER.size)
            size, kind = frames.HEADER.unpack(header)
            if kind != frames.HELLO or size > 64 * 1024:
                raise frames.ProtocolError("a data connection must start with HELLO")
            hello = frames.decode_hello(await reader.readexactly(size - 1))
            channel = await self._admit(hello)
        except (frames.ProtocolError, asyncio.IncompleteReadError, ConnectionError) as exc:
            self.rejected += 1
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.write(frames.encode_json(frames.REJECT, {"reason": str(exc)}))
                await writer.drain()
            writer.close()
            return
        writer.write(frames.encode_json(frames.ACCEPT, {"credits": channel.credits}))
        await writer.drain()
        channel.attach(reader, writer)

    async def _admit(self, hello: frames.Hello) -> RemoteInputChannel:
        """Wait until this process's deployment for the sender's (job, epoch, attempt) arrived
        and registered the channel; a provably stale sender is refused at once."""
        key = hello.channel_key()
        wanted = (hello.job_id, hello.epoch, hello.attempt)

        def stale() -> bool:
            fence = self.fence
            return (
                fence is not None
                and (fence.job_id, fence.epoch) == (hello.job_id, hello.epoch)
                and fence.attempt > hello.attempt
            )

        def ready() -> bool:
            fence = self.fence
            current = None if fence is None else (fence.job_id, fence.epoch, fence.attempt)
            return stale() or (current == wanted and key in self._expected)

        async with self._registered:
            try:
                wait = self._registered.wait_for(ready)
                await asyncio.wait_for(wait, self.registration_wait_s)
            except TimeoutError:
                raise ChannelRejected(
                    f"stale or foreign sender (job {hello.job_id}, epoch {hello.epoch}, attempt "
                    f"{hello.attempt}): no such deployment here after "
                    f"{self.registration_wait_s:g}s; current: {self.fence}"
                ) from None
            if stale():
                raise ChannelRejected(
                    f"stale or foreign sender (job {hello.job_id}, epoch {hello.epoch}, attempt "
                    f"{hello.attempt}); current: {self.fence}"
                )
            return self._expected.pop(key)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def connect_output(
    address: tuple[str, int], hello: frames.Hello, name: str, *, timeout_s: float = 10.0
) -> RemoteOutputChannel:
    """Open the sending end of a channel: connect, handshake, get the receiver's credits."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout_s)
    writer.write(frames.encode_hello(hello))
    await writer.drain()
    header = await asyncio.wait_for(reader.readexactly(frames.HEADER.size), timeout_s)
    size, kind = frames.HEADER.unpack(header)
    answer = json.loads(await reader.readexactly(size - 1))
    if kind != frames.ACCEPT:
        writer.close()
        raise ChannelRejected(f"channel {name} refused by {address}: {answer.get('reason')}")
    return RemoteOutputChannel(name, reader, writer, int(answer["credits"]))
