"""Source and sink operators: the two ends of a job, adapting readers and writers.

The source operator is a chain head that the task polls; its watermark emitter
(:mod:`streamjob.eventtime.emitter`) applies the timestamp assigner, feeds the watermark
generator and emits periodic watermarks on processing time.
"""

from __future__ import annotations

from typing import Any

from streamjob import errors
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter
from streamjob.connectors.source import (
    ReaderContext,
    Source,
    SourceReader,
    SourceSplit,
    assign_splits,
)
from streamjob.eventtime.emitter import WatermarkEmitter
from streamjob.eventtime.strategy import WatermarkStrategy
from streamjob.runtime.events import MAX_WATERMARK, Batch
from streamjob.runtime.failures import user_error
from streamjob.runtime.operators.base import StreamOperator


class SourceOperator(StreamOperator):
    """Polls the reader; timestamps and watermarks go through a
    :class:`~streamjob.eventtime.emitter.WatermarkEmitter` (periodic emission on the injected
    clock, per-record generators, idleness). A bounded input ends with the maximum watermark.
    """

    def __init__(
        self,
        source: Source,
        watermark_strategy: WatermarkStrategy | None,
        auto_watermark_interval_ms: int = 200,
    ) -> None:
        if watermark_strategy is not None and not isinstance(watermark_strategy, WatermarkStrategy):
            raise errors.JobDefinitionError(
                f"from_source takes a WatermarkStrategy (e.g. WatermarkStrategy."
                f"for_bounded_out_of_orderness(Duration.of_millis(200))), got "
                f"{watermark_strategy!r}"
            )
        self.source = source
        self.strategy = watermark_strategy
        self.interval_ms = auto_watermark_interval_ms
        self.reader: SourceReader
        self.restored_splits: list[SourceSplit] | None = None
        self.records_out = 0
        #: positions per checkpoint taken and not completed yet
        self._snapshotted: dict[int, list[SourceSplit]] = {}

    def open(self) -> None:
        ctx = self.ctx
        self.reader = self.source.create_reader(
            ReaderContext(ctx.subtask_index, ctx.parallelism, ctx.clock)
        )
        if self.restored_splits is None:
            splits = assign_splits(
                self.source.create_splits(ctx.parallelism), ctx.subtask_index, ctx.parallelism
            )
        else:
            splits = self.restored_splits
        self.reader.add_splits(splits)
        strategy = self.strategy
        self._emitter = (
            None
            if strategy is None
            else WatermarkEmitter(
                strategy,
                interval_ms=self.interval_ms,
                clock=ctx.clock,
                output=self.output,
                operator_name=self.name,
            )
        )

    def emit_next(self, max_records: int) -> bool:
        """Poll one batch and push it down the chain; False when nothing was available."""
        polled = self.reader.poll(max_records)
        if polled is None:
            self.maybe_emit_watermark()
            return False
        records = polled.records
        self.records_out += len(records)
        emitter = self._emitter
        if emitter is None:
            self.output.emit(Batch(records, polled.timestamps))
            return True
        emitter.emit_batch(records, polled.timestamps)
        emitter.on_periodic(self.ctx.clock.now_ms())
        return True

    def snapshot_splits(self, checkpoint_id: int) -> list[SourceSplit]:
        """The reader's positions for checkpoint ``checkpoint_id`` (kept until it completes
        or a later one does, to hand them to the reader on completion)."""
        splits = self.reader.snapshot_splits()
        self._snapshotted[checkpoint_id] = splits
        return splits

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        done = [c for c in self._snapshotted if c <= checkpoint_id]
        if not done:
            return
        splits = self._snapshotted[max(done)]
        for c in done:
            del self._snapshotted[c]
        self.reader.notify_checkpoint_complete(checkpoint_id, splits)

    def maybe_emit_watermark(self) -> None:
        if self._emitter is not None:
            self._emitter.on_periodic(self.ctx.clock.now_ms())

    def is_finished(self) -> bool:
        return self.reader.is_finished()

    def finish(self) -> None:
        # Bounded input ends with the maximum watermark so every event-time window fires
        # (with or without a strategy, as in Flink).
        if self._emitter is not None:
            self._emitter.finish()
        else:
            self.output.emit_watermark(MAX_WATERMARK)

    def close(self) -> None:
        self.reader.close()

    def process_batch(self, batch: Batch, input_index: int) -> None:
        raise RuntimeError("a source operator has no input")


class SinkOperator(StreamOperator):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.writer: SinkWriter
        self.records_in = 0
        #: pending transactions of every writer of the restored checkpoint (union state)
        self.restored_state: list[Any] | None = None

    def open(self) -> None:
        ctx = self.ctx
        self.writer = self.sink.create_writer(
            SinkContext(
                ctx.subtask_index,
                ctx.parallelism,
                ctx.attempt,
                bool(ctx.job_config.get("checkpointing")),
                restored_state=self.restored_state,
                attempt_id=str(ctx.job_config.get("attempt_id", ctx.attempt)),
            )
        )

    def process_batch(self, batch: Batch, input_index: int) -> None:
        self.records_in += len(batch.records)
        try:
            self.writer.write_batch(batch.records, batch.timestamps)
        except Exception as exc:
            raise user_error(exc, self.name, None) from exc

    def process_watermark(self, timestamp: int) -> None:
        return None

    def finish(self) -> None:
        self.writer.finish()

    def close(self) -> None:
        self.writer.close()

    def snapshot_state(self, checkpoint_id: int) -> Any:
        return self.writer.snapshot_state(checkpoint_id)

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self.writer.notify_checkpoint_complete(checkpoint_id)

    def notify_checkpoint_aborted(self, checkpoint_id: int) -> None:
        self.writer.notify_checkpoint_aborted(checkpoint_id)
