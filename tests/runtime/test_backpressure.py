"""Credit-based flow control: behind a slow sink, in-flight data stays bounded.

A sink that sleeps per batch slows the whole pipeline; at every write we compare what the
source has produced with what the sink has consumed. The difference can never exceed what the
channels and buffers can hold: credits x batch x channels, plus one batch per writer buffer and
one being processed. At the channel level, a writer whose consumer does not read holds at most
``credits`` batches in flight and then waits; with unbounded credits it never pushes back (the
negative control).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from streamjob import GeneratorSource, StreamEnvironment
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter
from streamjob.runtime import channels as channels_mod
from streamjob.runtime.events import Batch
from streamjob.runtime.local_executor import LocalExecutor
from streamjob.runtime.partitioners import ForwardPartitioner
from streamjob.runtime.writer import RecordWriter

BATCH = 100
CREDITS = 2
TOTAL = 20_000


class _SlowSink(Sink):
    def __init__(self, executor_ref: list[LocalExecutor]) -> None:
        self.executor_ref = executor_ref
        self.max_gap = 0
        self.consumed = 0

    def create_writer(self, context: SinkContext) -> SinkWriter:
        sink = self

        class Writer(SinkWriter):
            def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
                sink.consumed += len(records)
                time.sleep(0.0005)
                produced = sum(t.records_out for t in sink.executor_ref[0].tasks if t.gate is None)
                sink.max_gap = max(sink.max_gap, produced - sink.consumed)

        return Writer()


def _run(parallelism: int) -> _SlowSink:
    env = StreamEnvironment(parallelism=parallelism)
    env.config.batch_size = BATCH
    env.config.credits = CREDITS
    ref: list[LocalExecutor] = []
    sink = _SlowSink(ref)
    env.from_source(GeneratorSource(lambda i: i, count=TOTAL)).key_by(lambda x: x % 50).map(
        lambda x: x
    ).sink_to(sink)
    executor = LocalExecutor(env.get_job_graph(), env.config)
    ref.append(executor)
    asyncio.run(executor.run())
    assert sink.consumed == TOTAL
    return sink


def test_in_flight_records_are_bounded_by_credits_and_batch_size() -> None:
    for p in (1, 2):
        sink = _run(p)
        channels = p * p
        bound = CREDITS * BATCH * channels + 2 * BATCH * p + BATCH * p
        assert sink.max_gap <= bound, (p, sink.max_gap, bound)
        assert 5 * bound < TOTAL  # the bound is meaningful for this input


async def _fill(credits: int) -> tuple[int, bool]:
    """Emit 10 batches into a channel nobody reads; report in-flight batches and blocking."""
    channel = channels_mod.LocalChannel(credits)
    writer = RecordWriter(ForwardPartitioner(), [channel], batch_size=BATCH)
    for start in range(0, 10 * BATCH, BATCH):
        writer.emit(Batch(list(range(start, start + BATCH))))
    try:
        await asyncio.wait_for(writer.drain(), timeout=0.2)
        blocked = False
    except TimeoutError:
        blocked = True
    return channel.in_flight(), blocked


def test_a_writer_without_credit_waits_and_holds_at_most_credits_batches_in_flight() -> None:
    in_flight, blocked = asyncio.run(_fill(CREDITS))
    assert in_flight == CREDITS
    assert blocked


def test_negative_control_unbounded_credits_never_push_back() -> None:
    in_flight, blocked = asyncio.run(_fill(10**9))
    assert in_flight == 10
    assert not blocked


async def _drain_after_consumer_polls() -> list[int]:
    channel = channels_mod.LocalChannel(1)
    writer = RecordWriter(ForwardPartitioner(), [channel], batch_size=BATCH)
    for start in range(0, 3 * BATCH, BATCH):
        writer.emit(Batch(list(range(start, start + BATCH))))
    drained = asyncio.ensure_future(writer.drain())
    received: list[int] = []
    while len(received) < 3 * BATCH:
        await asyncio.sleep(0)
        item = channel.poll()
        if isinstance(item, Batch):
            received.extend(item.records)
    await drained
    return received


def test_credit_returns_when_the_consumer_polls_and_order_is_kept() -> None:
    assert asyncio.run(_drain_after_consumer_polls()) == list(range(3 * BATCH))
