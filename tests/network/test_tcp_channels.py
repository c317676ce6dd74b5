"""The TCP data plane: the same engine over loopback TCP channels.

Aspects covered: a keyed job gives the same result over TCP as in memory, at parallelism 2
(every channel a real socket); the credit protocol bounds batches in flight per channel; a
sender of a stale attempt or foreign job is rejected at the handshake (fencing); a broken
connection fails the receiving task instead of hanging.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamjob import GeneratorSource, StreamEnvironment
from streamjob.network import frames
from streamjob.network.channels import RemoteInputChannel
from streamjob.network.factory import TcpChannels
from streamjob.network.server import ChannelRejected, DataServer, Fence, connect_output
from streamjob.runtime.events import Batch, EndOfPartition
from streamjob.runtime.local_executor import LocalExecutor
from streamjob.testing import TestingSink
from tests.checkpoint.jobs import CountPerKey, assert_keyed_placement

EVENTS = 20_000


def _job(sink: TestingSink, p: int) -> StreamEnvironment:
    env = StreamEnvironment(parallelism=p)
    env.config.batch_size = 256
    env.config.credits = 2
    (
        env.from_source(GeneratorSource(lambda i: (f"k{(i * 7919) % 37}", i), count=EVENTS))
        .key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(sink)
    )
    return env


async def _run_over_tcp(env: StreamEnvironment) -> tuple[TcpChannels, LocalExecutor]:
    graph = env.get_job_graph()
    server = DataServer()
    address = await server.start()
    everything = [(v.id, i) for v in graph.vertices for i in range(v.parallelism)]
    tcp = TcpChannels(
        graph,
        server,
        Fence("job", "epoch-1", 0),
        everything,
        lambda v, i: address,
        credits=2,
        in_memory_local=False,  # every channel over a real socket
    )
    await tcp.prepare()
    executor = LocalExecutor(graph, env.config, channels=tcp)
    await executor.run()
    await tcp.close()
    await server.close()
    return tcp, executor


@pytest.mark.parametrize("p", [1, 2])
def test_a_keyed_job_over_tcp_gives_the_in_memory_result(p: int) -> None:
    sink = TestingSink()
    tcp, _ = asyncio.run(_run_over_tcp(_job(sink, p)))
    from collections import Counter

    assert Counter((k, n) for k, n, _ in sink.committed) == expected_pairs_for(EVENTS)
    assert_keyed_placement(sink, p)
    assert len(tcp.outputs) == len(tcp.inputs) > 0


def expected_pairs_for(events: int) -> Any:
    from collections import Counter

    counts: Counter[str] = Counter(f"k{(i * 7919) % 37}" for i in range(events))
    return Counter((k, n) for k, c in counts.items() for n in range(1, c + 1))


async def _unread_receiver(credits: int) -> tuple[int, bool]:
    server = DataServer()
    address = await server.start()
    await server.set_fence(Fence("job", "e", 0))
    receiver = RemoteInputChannel("r", credits)
    await server.expect((0, 1, 0, 0), receiver)
    sender = await connect_output(address, frames.Hello("job", "e", 0, 1, 0, 0), "s")
    sent = 0
    while sender.has_credit():
        sender.send(Batch(list(range(100))))
        sent += 1
    try:
        await asyncio.wait_for(sender.wait_for_credit(), 0.2)
        blocked = False
    except TimeoutError:
        blocked = True
    # the receiver takes one batch: exactly one credit comes back
    await asyncio.sleep(0.05)
    assert isinstance(receiver.poll(), Batch)
    await asyncio.wait_for(sender.wait_for_credit(), 2)
    await sender.close()
    await receiver.close()
    await server.close()
    return sent, blocked


def test_credits_bound_batches_in_flight() -> None:
    sent, blocked = asyncio.run(_unread_receiver(3))
    assert sent == 3
    assert blocked


async def _handshake(job: str, epoch: str, attempt: int) -> None:
    server = DataServer(registration_wait_s=0.5)
    address = await server.start()
    await server.set_fence(Fence("job", "epoch-2", 5))
    await server.expect((5, 0, 0, 0), RemoteInputChannel("r", 2))
    try:
        channel = await connect_output(address, frames.Hello(job, epoch, attempt, 0, 0, 0), "s")
        await channel.close()
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("job", "epoch", "attempt"),
    [("job", "epoch-1", 5), ("job", "epoch-2", 4), ("other", "epoch-2", 5)],
    ids=["stale-epoch", "stale-attempt", "foreign-job"],
)
def test_stale_or_foreign_senders_are_rejected(job: str, epoch: str, attempt: int) -> None:
    with pytest.raises(ChannelRejected, match="stale or foreign"):
        asyncio.run(_handshake(job, epoch, attempt))


async def _early_sender() -> list[Any]:
    """A sender of the next attempt connects before this process got its deployment: the
    handshake waits for the deployment instead of refusing it."""
    server = DataServer()
    address = await server.start()
    await server.set_fence(Fence("job", "e", 0))
    connecting = asyncio.ensure_future(
        connect_output(address, frames.Hello("job", "e", 1, 0, 0, 0), "s")
    )
    await asyncio.sleep(0.2)
    assert not connecting.done()
    receiver = RemoteInputChannel("r", 2)
    await server.set_fence(Fence("job", "e", 1))
    await server.expect((1, 0, 0, 0), receiver)
    sender = await asyncio.wait_for(connecting, 5)
    sender.send(Batch([7]))
    await asyncio.sleep(0.05)
    item = receiver.poll()
    await sender.close()
    await receiver.close()
    await server.close()
    return [] if item is None else item.records  # type: ignore[union-attr]


def test_a_sender_ahead_of_the_deployment_waits_for_it() -> None:
    assert asyncio.run(_early_sender()) == [7]


def test_the_current_sender_is_accepted() -> None:
    asyncio.run(_handshake("job", "epoch-2", 5))


async def _broken_sender() -> BaseException | None:
    server = DataServer()
    address = await server.start()
    await server.set_fence(Fence("job", "e", 0))
    receiver = RemoteInputChannel("r", 2)
    await server.expect((0, 0, 0, 0), receiver)
    sender = await connect_output(address, frames.Hello("job", "e", 0, 0, 0, 0), "s")
    sender.send(Batch([1, 2, 3]))
    await asyncio.sleep(0.05)
    sender._writer.transport.abort()  # the sending process dies without end of partition
    await asyncio.sleep(0.05)
    first = receiver.poll()
    assert isinstance(first, Batch) and first.records == [1, 2, 3]
    try:
        receiver.poll()
    except ConnectionError as exc:
        return exc
    finally:
        await receiver.close()
        await server.close()
    return None


def test_a_vanished_sender_fails_the_receiver() -> None:
    failure = asyncio.run(_broken_sender())
    assert failure is not None and "went away" in str(failure)


def test_end_of_partition_then_close_is_a_clean_end() -> None:
    async def run() -> list[Any]:
        server = DataServer()
        address = await server.start()
        await server.set_fence(Fence("job", "e", 0))
        receiver = RemoteInputChannel("r", 2)
        await server.expect((0, 0, 0, 0), receiver)
        sender = await connect_output(address, frames.Hello("job", "e", 0, 0, 0, 0), "s")
        sender.send(EndOfPartition())
        await sender.close()
        await asyncio.sleep(0.05)
        items = [receiver.poll(), receiver.poll()]
        await receiver.close()
        await server.close()
        return items

    items = asyncio.run(run())
    assert isinstance(items[0], EndOfPartition) and items[1] is None
