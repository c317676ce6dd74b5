"""The operator contract and the outputs that chain operators together.

An operator receives whole batches (``process_batch``) and emits whole batches to its
:class:`Output`. A chained output calls the next operator directly; a writer output hands the
batch to a :class:`~streamjob.runtime.writer.RecordWriter`; a fan-out output does both for
several consumers. Side outputs are keyed by the tag's name.

Lifecycle (Flink's): ``setup`` -> ``initialize_state`` -> ``open`` -> process... ->
``end_input`` (per logical input) -> ``finish`` -> ``close``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamjob.clock import SYSTEM_CLOCK, Clock
from streamjob.keygroups import KeyGroupRange
from streamjob.runtime.events import Batch

if TYPE_CHECKING:
    from streamjob.runtime.writer import RecordWriter


@dataclass
class OperatorContext:
    """What the runtime tells an operator about where it runs."""

    operator_name: str
    uid: str
    task_name: str
    subtask_index: int
    parallelism: int
    max_parallelism: int
    clock: Clock = SYSTEM_CLOCK
    attempt: int = 0
    key_group_range: KeyGroupRange | None = None
    job_config: dict[str, Any] = field(default_factory=dict)
    # Lets an operator ask its task to run an action on the task thread later.
    mailbox: Callable[[Callable[[], None]], None] | None = None


class Output:
    """Where an operator's batches, side outputs and watermarks go."""

    def emit(self, batch: Batch) -> None:
        raise NotImplementedError

    def emit_side(self, tag: str, batch: Batch) -> None:
        raise NotImplementedError

    def emit_watermark(self, timestamp: int) -> None:
        raise NotImplementedError

    def emit_watermark_status(self, idle: bool) -> None:
        """This stream became idle (left out of watermark minimums downstream) or active."""
        return None


class DiscardingOutput(Output):
    def emit(self, batch: Batch) -> None:
        return None

    def emit_side(self, tag: str, batch: Batch) -> None:
        return None

    def emit_watermark(self, timestamp: int) -> None:
        return None


class ChainedOutput(Output):
    """Direct call into the next operator of the chain."""

    def __init__(self, target: StreamOperator) -> None:
        self.target = target

    def emit(self, batch: Batch) -> None:
        self.target.process_batch(batch, 0)

    def emit_side(self, tag: str, batch: Batch) -> None:
        return None

    def emit_watermark(self, timestamp: int) -> None:
        self.target.process_watermark(timestamp)

    def emit_watermark_status(self, idle: bool) -> None:
        self.target.process_watermark_status(idle)


class WriterOutput(Output):
    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer

    def emit(self, batch: Batch) -> None:
        self.writer.emit(batch)

    def emit_side(self, tag: str, batch: Batch) -> None:
        return None

    def emit_watermark(self, timestamp: int) -> None:
        from streamjob.runtime.events import Watermark

        self.writer.broadcast_event(Watermark(timestamp))

    def emit_watermark_status(self, idle: bool) -> None:
        from streamjob.runtime.events import WatermarkStatus

        self.writer.broadcast_event(WatermarkStatus(idle))


class RoutingOutput(Output):
    """Main output to ``main`` consumers, each side-output tag to its own consumers."""

    def __init__(self, main: Sequence[Output], side: Mapping[str, Sequence[Output]]) -> None:
        self.main = list(main)
        self.side = {tag: list(outs) for tag, outs in side.items()}
        self._single = self.main[0] if len(self.main) == 1 else None

    def emit(self, batch: Batch) -> None:
        single = self._single
        if single is not None:
            single.emit(batch)
            return
        for out in self.main:
            out.emit(batch)

    def emit_side(self, tag: str, batch: Batch) -> None:
        for out in self.side.get(tag, ()):
            out.emit(batch)

    def emit_watermark(self, timestamp: int) -> None:
        for out in self.main:
            out.emit_watermark(timestamp)
        for outs in self.side.values():
            for out in outs:
                out.emit_watermark(timestamp)

    def emit_watermark_status(self, idle: bool) -> None:
        for out in self.main:
            out.emit_watermark_status(idle)
        for outs in self.side.values():
            for out in outs:
                out.emit_watermark_status(idle)


class StreamOperator:
    """Base operator: forwards watermarks, has no state."""

    output: Output = DiscardingOutput()
    ctx: OperatorContext
    #: operators that hold keyed state get a backend from the task
    is_keyed = False
    name = "operator"

    def setup(self, ctx: OperatorContext, output: Output) -> None:
        self.ctx = ctx
        self.output = output
        self.name = ctx.operator_name

    def open(self) -> None:
        return None

    def process_batch(self, batch: Batch, input_index: int) -> None:
        raise NotImplementedError

    def process_watermark(self, timestamp: int) -> None:
        self.output.emit_watermark(timestamp)

    def process_watermark_status(self, idle: bool) -> None:
        self.output.emit_watermark_status(idle)

    def end_input(self, input_index: int) -> None:
        return None

    def finish(self) -> None:
        return None

    def close(self) -> None:
        return None

    # -- checkpointing hooks (the checkpoint layer fills these in) ----------------------
    def snapshot_state(self, checkpoint_id: int) -> Any:
        return None

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        return None

    def notify_checkpoint_aborted(self, checkpoint_id: int) -> None:
        return None
