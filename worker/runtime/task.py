"""A subtask: one chain of operators driven by a single-threaded mailbox loop.

Steps of the loop (DESIGN.md section 4):

1. run queued mail (timers due, checkpoint triggers, notifications, cancellation), then one
   bounded step of a snapshot still in progress (``snapshot_work``: key groups a checkpoint
   serializes copy-on-write after its barrier went on);
2. take the next item from the input gate (or, for a source task, poll the reader);
3. a batch goes to the chain head, which calls the rest of the chain directly; an event is
   handled here (watermark valve, end of partition) or by the checkpoint handler (barriers);
4. if a writer could not send for lack of credit, wait for credit (backpressure);
5. when idle, flush partial output buffers and sleep until data or mail arrives (with snapshot
   work left, only yield to the other tasks of the loop, and go on with it).

User functions never run concurrently inside a subtask: everything happens in this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from streamjob.runtime.events import (
    END_OF_DATA,
    Batch,
    CheckpointBarrier,
    EndOfData,
    EndOfPartition,
    Watermark,
    WatermarkStatus,
)
from streamjob.runtime.gate import InputGate
from streamjob.runtime.operators.base import StreamOperator
from streamjob.runtime.operators.io import SourceOperator
from streamjob.runtime.valve import WatermarkValve
from streamjob.runtime.writer import RecordWriter

log = logging.getLogger(__name__)

DEFAULT_LINGER_S = 0.05


class BarrierHandler(Protocol):
    """Checkpoint barrier processing (aligned or not), supplied by the checkpoint layer."""

    def on_barrier(self, task: Task, channel: int, barrier: CheckpointBarrier) -> None: ...

    def on_channel_finished(self, task: Task, channel: int) -> None: ...


class SnapshotWork(Protocol):
    """Work of a snapshot left after its barrier went on, done between batches."""

    def step(self) -> bool:
        """Do a bounded amount of it; False once none is left."""

    def abandon(self) -> None:
        """Drop it (the task ends)."""


class TaskCancelled(Exception):
    pass


class Task:
    """One subtask of one job vertex."""

    def __init__(
        self,
        *,
        name: str,
        vertex_id: int,
        subtask_index: int,
        operators: Sequence[StreamOperator],
        gate: InputGate | None,
        writers: Sequence[RecordWriter],
        batch_size: int,
        linger_s: float = DEFAULT_LINGER_S,
    ) -> None:
        self.name = name
        self.vertex_id = vertex_id
        self.subtask_index = subtask_index
        self.operators = list(operators)
        self.head = self.operators[0]
        self.gate = gate
        self.writers = list(writers)
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.valve = WatermarkValve(len(gate.channels)) if gate is not None else None
        self.barrier_handler: BarrierHandler | None = None
        self._mail: deque[Callable[[], None]] = deque()
        self._wakeup = asyncio.Event()
        self._cancelled = False
        self._inputs_left: dict[int, int] = {}
        if gate is not None:
            for logical in gate.input_of:
                self._inputs_left[logical] = self._inputs_left.get(logical, 0) + 1
        self.records_in = 0
        self.finished = False
        self.end_of_input = False
        #: set by the checkpoint layer; with checkpointing a task that ended its input waits
        #: for one more completed checkpoint before it finishes (FLIP-147)
        self.checkpointer: Any = None
        self.final_checkpoint_done = False
        #: set by the checkpoint layer while a snapshot has work left (see SnapshotWork)
        self.snapshot_work: SnapshotWork | None = None
        self._eod = [False] * (len(gate.channels) if gate is not None else 0)
        self._failure: BaseException | None = None

    # -- mailbox ------------------------------------------------------------------------
    def wake(self) -> None:
        self._wakeup.set()

    def post(self, action: Callable[[], None]) -> None:
        """Run ``action`` on this task's loop, between batches."""
        self._mail.append(action)
        self._wakeup.set()

    def cancel(self) -> None:
        self._cancelled = True
        self._wakeup.set()

    def stop(self) -> None:
        """Cancel after the mail already queued (e.g. commit notifications) has run."""
        self.post(self.cancel)

    def fail(self, failure: BaseException) -> None:
        """Fail this task from outside its loop (e.g. an upload thread's callback)."""
        self._failure = failure
        self._wakeup.set()

    def _may_finish(self) -> bool:
        if self.snapshot_work is not None:
            return False  # finish the snapshot in progress: it acknowledges afterwards
        return self.checkpointer is None or self.final_checkpoint_done

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run_mail(self) -> None:
        mail = self._mail
        while mail:
            mail.popleft()()
        self._check_failure()

    def _snapshot_step(self) -> None:
        work = self.snapshot_work
        if work is not None and not work.step() and self.snapshot_work is work:
            self.snapshot_work = None

    # -- output helpers -----------------------------------------------------------------
    def flush_outputs(self) -> None:
        for writer in self.writers:
            writer.flush()

    async def drain_outputs(self) -> None:
        for writer in self.writers:
            if writer.has_pending:
                await writer.drain()

    def broadcast_event(self, event: Any) -> None:
        for writer in self.writers:
            writer.broadcast_event(event)

    @property
    def records_out(self) -> int:
        return sum(w.records_out for w in self.writers)

    @property
    def backpressured_s(self) -> float:
        """Seconds this task waited for downstream credit."""
        return sum(w.backpressured_s for w in self.writers)

    def state_size_bytes(self) -> int:
        """Approximate size of the keyed state of this task's operators."""
        total = 0
        for op in self.operators:
            backend = getattr(op, "backend", None)
            if backend is not None:
                total += int(backend.approx_size_bytes())
        return total

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        for op in self.operators:
            op.open()
        try:
            if isinstance(self.head, SourceOperator):
                await self._run_source(self.head)
            else:
                await self._run_inputs()
            if self._cancelled:
                raise TaskCancelled(self.name)
            await self._finish()
        finally:
            work, self.snapshot_work = self.snapshot_work, None
            if work is not None:
                work.abandon()
            for op in reversed(self.operators):
                try:
                    op.close()
                except Exception:
                    log.exception("closing operator %s of %s failed", op.name, self.name)

    def _end_input(self) -> None:
        """All input ended: flush every operator (head first) and tell downstream."""
        if self.end_of_input:
            return
        self.end_of_input = True
        for op in self.operators:
            op.finish()
        self.broadcast_event(END_OF_DATA)

    async def _finish(self) -> None:
        self._end_input()
        self.broadcast_event(EndOfPartition())
        await self.drain_outputs()
        self.finished = True

    async def _idle(self, wait_s: float | None) -> None:
        self.flush_outputs()
        await self.drain_outputs()
        self._wakeup.clear()
        if self._mail or self._cancelled or self._failure is not None:
            return
        if self.snapshot_work is not None:
            await asyncio.sleep(0)  # let the other tasks of this loop run; then the next step
            return
        if wait_s is None:
            await self._wakeup.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait_s)

    async def _run_source(self, source: SourceOperator) -> None:
        loop_time = time.monotonic
        last_flush = loop_time()
        batch_size = self.batch_size
        while not self._cancelled:
            if self._mail:
                self._run_mail()
            self._check_failure()
            if self.snapshot_work is not None:
                self._snapshot_step()
            if self.end_of_input or source.is_finished():
                self._end_input()
                if self._may_finish():
                    return
                await self._idle(None)
                continue
            emitted = source.emit_next(batch_size)
            if self.writers and any(w.has_pending for w in self.writers):
                await self.drain_outputs()
            now = loop_time()
            if not emitted:
                last_flush = now
                await self._idle(source.reader.next_available_in())
                continue
            if now - last_flush >= self.linger_s:
                self.flush_outputs()
                last_flush = now
            await asyncio.sleep(0)  # let the other subtasks of this process run

    async def _run_inputs(self) -> None:
        gate = self.gate
        assert gate is not None
        head = self.head
        input_of = gate.input_of
        loop_time = time.monotonic
        last_flush = loop_time()
        while not self._cancelled:
            if self._mail:
                self._run_mail()
            self._check_failure()
            if self.snapshot_work is not None:
                self._snapshot_step()
            polled = gate.poll()
            if polled is None:
                if gate.all_finished() and self._may_finish():
                    return
                last_flush = loop_time()
                if not gate.has_ready():
                    await self._idle(None)
                continue
            channel, item = polled
            if item.__class__ is Batch:
                self.records_in += len(item.records)
                head.process_batch(item, input_of[channel])
            else:
                self._on_event(channel, item)
            for writer in self.writers:
                if writer.has_pending:
                    await writer.drain()
            now = loop_time()
            if now - last_flush >= self.linger_s:
                self.flush_outputs()
                last_flush = now

    def _channel_ended(self, channel: int) -> None:
        """No more records on ``channel`` (end of data, or end of partition)."""
        if self._eod[channel]:
            return
        self._eod[channel] = True
        assert self.gate is not None
        logical = self.gate.input_of[channel]
        self._inputs_left[logical] -= 1
        if self._inputs_left[logical] == 0:
            self.head.end_input(logical)
        if all(self._eod):
            self._end_input()

    def _on_event(self, channel: int, event: Any) -> None:
        valve = self.valve
        assert valve is not None
        assert self.gate is not None
        kind = event.__class__
        if kind is Watermark:
            was_idle = valve.all_idle()
            advanced = valve.on_watermark(channel, event.timestamp)
            if was_idle:
                self.head.process_watermark_status(False)
            if advanced is not None:
                self.head.process_watermark(advanced)
        elif kind is WatermarkStatus:
            was_idle = valve.all_idle()
            advanced = valve.on_idle(channel, event.idle)
            if advanced is not None:
                self.head.process_watermark(advanced)
            if valve.all_idle() != was_idle:
                self.head.process_watermark_status(not was_idle)
        elif kind is CheckpointBarrier:
            if self.barrier_handler is None:
                raise RuntimeError(f"{self.name}: got a checkpoint barrier without a handler")
            self.barrier_handler.on_barrier(self, channel, event)
        elif kind is EndOfData:
            self._channel_ended(channel)
        elif kind is EndOfPartition:
            self.gate.mark_finished(channel)
            advanced = valve.on_finished(channel)
            if advanced is not None:
                self.head.process_watermark(advanced)
            self._channel_ended(channel)
            if self.barrier_handler is not None:
                self.barrier_handler.on_channel_finished(self, channel)
        else:
            raise RuntimeError(f"{self.name}: unexpected channel item {event!r}")
