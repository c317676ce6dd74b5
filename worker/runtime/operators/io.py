"""Source and sink operators: the two ends of a job, adapting readers and writers.

The source operator is a chain head that the task polls; it applies the timestamp assigner,
feeds the watermark generator per batch and emits periodic watermarks on processing time.
"""

from __future__ import annotations

from typing import Any

from streamjob.connectors.sink import Sink, SinkContext, SinkWriter
from streamjob.connectors.source import (
    ReaderContext,
    Source,
    SourceReader,
    SourceSplit,
    assign_splits,
)
from streamjob.eventtime.strategy import WatermarkStrategy
from streamjob.runtime.events import MAX_WATERMARK, MIN_WATERMARK, Batch
from streamjob.runtime.failures import user_error
from streamjob.runtime.operators.base import StreamOperator


class SourceOperator(StreamOperator):
    def __init__(
        self,
        source: Source,
        watermark_strategy: WatermarkStrategy | None,
        auto_watermark_interval_ms: int = 200,
    ) -> None:
        self.source = source
        self.strategy = watermark_strategy
        self.interval_ms = auto_watermark_interval_ms
        self.reader: SourceReader
        self.restored_splits: list[SourceSplit] | None = None
        self.records_out = 0

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
        self._assigner = None if strategy is None else strategy.timestamp_assigner
        self._generator = None if strategy is None else strategy.create_generator()
        self._last_watermark = MIN_WATERMARK
        self._next_emit = ctx.clock.now_ms() + self.interval_ms

    def emit_next(self, max_records: int) -> bool:
        """Poll one batch and push it down the chain; False when nothing was available."""
        polled = self.reader.poll(max_records)
        if polled is None:
            self.maybe_emit_watermark()
            return False
        records = polled.records
        timestamps = polled.timestamps
        assigner = self._assigner
        if assigner is not None:
            record: Any = None
            try:
                if timestamps is None:
                    timestamps = [assigner(record, None) for record in records]
                else:
                    timestamps = [
                        assigner(record, ts) for record, ts in zip(records, timestamps, strict=True)
                    ]
            except Exception as exc:
                raise user_error(exc, self.name + " timestamp assigner", record) from exc
        self.records_out += len(records)
        self.output.emit(Batch(records, timestamps))
        generator = self._generator
        if generator is not None and timestamps is not None:
            punctuated = generator.on_batch(timestamps)
            if punctuated is not None:
                self._emit_watermark(punctuated)
        self.maybe_emit_watermark()
        return True

    def maybe_emit_watermark(self) -> None:
        if self._generator is None:
            return
        now = self.ctx.clock.now_ms()
        if now >= self._next_emit:
            self._next_emit = now + self.interval_ms
            self._emit_watermark(self._generator.current_watermark())

    def _emit_watermark(self, timestamp: int) -> None:
        if timestamp > self._last_watermark:
            self._last_watermark = timestamp
            self.output.emit_watermark(timestamp)

    def is_finished(self) -> bool:
        return self.reader.is_finished()

    def finish(self) -> None:
        # Bounded input ends with the maximum watermark so every event-time window fires.
        if self._generator is not None:
            self._emit_watermark(MAX_WATERMARK)

    def close(self) -> None:
        self.reader.close()

    def process_batch(self, batch: Batch, input_index: int) -> None:
        raise RuntimeError("a source operator has no input")


class SinkOperator(StreamOperator):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.writer: SinkWriter
        self.records_in = 0

    def open(self) -> None:
        ctx = self.ctx
        self.writer = self.sink.create_writer(
            SinkContext(
                ctx.subtask_index,
                ctx.parallelism,
                ctx.attempt,
                bool(ctx.job_config.get("checkpointing")),
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
