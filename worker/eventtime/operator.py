"""``assign_timestamps_and_watermarks``: timestamps and watermarks in the middle of a job.

Flink's ``TimestampsAndWatermarksOperator``: the strategy's emitter
(:mod:`streamjob.eventtime.emitter`) assigns timestamps and generates watermarks for the records
passing through. Watermarks from upstream are dropped, except the maximum watermark that ends a
bounded input; periodic emission (and idleness) runs on a processing-time wakeup through the
mailbox, so it happens even while no record arrives.
"""

from __future__ import annotations

from streamjob import errors
from streamjob.eventtime.emitter import WatermarkEmitter
from streamjob.eventtime.strategy import WatermarkStrategy
from streamjob.runtime.events import MAX_WATERMARK, Batch
from streamjob.runtime.operators.base import StreamOperator
from streamjob.runtime.timers import ProcessingTimeScheduler


class TimestampsAndWatermarksOperator(StreamOperator):
    def __init__(self, watermark_strategy: WatermarkStrategy, interval_ms: int = 200) -> None:
        if not isinstance(watermark_strategy, WatermarkStrategy):
            raise errors.JobDefinitionError(
                "assign_timestamps_and_watermarks takes a WatermarkStrategy, e.g. "
                "WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(200))"
                ".with_timestamp_assigner(lambda event, ts: event.time); "
                f"got {watermark_strategy!r}"
            )
        self.strategy = watermark_strategy
        self.interval_ms = interval_ms

    def open(self) -> None:
        ctx = self.ctx
        self._emitter = WatermarkEmitter(
            self.strategy,
            interval_ms=self.interval_ms,
            clock=ctx.clock,
            output=self.output,
            operator_name=self.name,
        )
        self._scheduler = ProcessingTimeScheduler(ctx.clock, ctx.mailbox, self._on_time)
        self._scheduler.request(self._emitter.next_periodic)

    def process_batch(self, batch: Batch, input_index: int) -> None:
        emitter = self._emitter
        emitter.emit_batch(batch.records, batch.timestamps)
        emitter.on_periodic(self.ctx.clock.now_ms())

    def _on_time(self, now: int) -> None:
        self._emitter.on_periodic(now)
        self._scheduler.request(self._emitter.next_periodic)

    def process_watermark(self, timestamp: int) -> None:
        if timestamp == MAX_WATERMARK:  # the end of a bounded input passes through
            self._emitter.emit_watermark(MAX_WATERMARK)

    def process_watermark_status(self, idle: bool) -> None:
        return None  # this operator decides its own output's status

    def finish(self) -> None:
        self._emitter.finish()

    def close(self) -> None:
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None:
            scheduler.close()
