"""The runtime side of a ``WatermarkStrategy``: timestamps, watermarks, periodic emission, idleness.

One :class:`WatermarkEmitter` per subtask, used by the source operator and by
``assign_timestamps_and_watermarks`` (:mod:`streamjob.eventtime.operator`). Per batch:

1. the timestamp assigner (if any) gives each record its timestamp;
2. a per-batch generator sees the batch's timestamps after the batch is emitted; a per-record
   generator sees each record, and the batch is split right after every record that yields a
   watermark, so records and watermarks stay in order;
3. every auto-watermark interval of processing time (the injected clock), the periodic
   watermark is emitted, or, with ``with_idleness``, the output is marked idle when no record
   came for the idle timeout; the next record marks it active again.

Watermarks only move forward; a bounded input ends with the maximum watermark (``finish``).
"""

from __future__ import annotations

from typing import Any

from streamjob import errors
from streamjob.clock import Clock
from streamjob.eventtime.generators import PerRecordWatermarkGenerator, WatermarkGenerator
from streamjob.eventtime.status import emit_watermark_status
from streamjob.eventtime.strategy import WatermarkStrategy
from streamjob.runtime.events import MAX_WATERMARK, MIN_WATERMARK, Batch
from streamjob.runtime.failures import describe_record, user_error
from streamjob.runtime.operators.base import Output


class WatermarkEmitter:
    def __init__(
        self,
        strategy: WatermarkStrategy,
        *,
        interval_ms: int,
        clock: Clock,
        output: Output,
        operator_name: str,
    ) -> None:
        self._assigner = strategy.timestamp_assigner
        generator = strategy.create_generator()
        self._per_record: PerRecordWatermarkGenerator | None = None
        self._batch_generator: WatermarkGenerator | None = None
        if isinstance(generator, PerRecordWatermarkGenerator):
            self._per_record = generator
        else:
            self._batch_generator = generator
        self._interval = interval_ms
        self._clock = clock
        self._output = output
        self._name = operator_name
        self._idle_timeout = strategy.idle_timeout_ms
        now = clock.now_ms()
        self.next_periodic = now + interval_ms
        self._last_activity = now
        self.last_watermark = MIN_WATERMARK
        self.idle = False

    # -- records ----------------------------------------------------------------------------
    def emit_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        """Assign timestamps, emit the records, feed the generator (splitting if per record)."""
        if self._assigner is not None:
            timestamps = self._assign(records, timestamps)
        if self.idle:
            self._set_idle(False)
        if self._idle_timeout is not None:
            self._last_activity = self._clock.now_ms()
        output = self._output
        if timestamps is None:  # no timestamps anywhere: nothing to generate watermarks from
            output.emit(Batch(records, None))
            return
        if self._per_record is not None:
            self._emit_per_record(self._per_record, records, timestamps)
            return
        output.emit(Batch(records, timestamps))
        assert self._batch_generator is not None
        try:
            punctuated = self._batch_generator.on_batch(timestamps)
        except Exception as exc:
            raise user_error(exc, self._name + " watermark generator", None) from exc
        if punctuated is not None:
            self.emit_watermark(punctuated)

    def _assign(self, records: list[Any], timestamps: list[int] | None) -> list[int]:
        assigner = self._assigner
        assert assigner is not None
        record: Any = None
        try:
            if timestamps is None:
                stamps = [assigner(record, None) for record in records]
            else:
                stamps = [
                    assigner(record, ts) for record, ts in zip(records, timestamps, strict=True)
                ]
        except Exception as exc:
            raise user_error(exc, self._name + " timestamp assigner", record) from exc
        if None in stamps:
            record = records[stamps.index(None)]  # type: ignore[arg-type]
            raise errors.JobDefinitionError(
                f"the timestamp assigner of '{self._name}' returned None for record "
                f"{describe_record(record)}: it must return the event time in epoch "
                "milliseconds (an int)"
            )
        return stamps

    def _emit_per_record(
        self, generator: PerRecordWatermarkGenerator, records: list[Any], timestamps: list[int]
    ) -> None:
        output = self._output
        on_event = generator.on_event
        start = 0
        last = self.last_watermark
        record: Any = None
        try:
            for i, (record, ts) in enumerate(zip(records, timestamps, strict=True)):
                wm = on_event(record, ts)
                if wm is not None and wm > last:
                    output.emit(Batch(records[start : i + 1], timestamps[start : i + 1]))
                    start = i + 1
                    last = wm
                    self.last_watermark = wm
                    output.emit_watermark(wm)
        except Exception as exc:
            raise user_error(exc, self._name + " watermark generator", record) from exc
        if start < len(records):
            output.emit(Batch(records[start:], timestamps[start:]))

    # -- watermarks -------------------------------------------------------------------------
    def emit_watermark(self, timestamp: int) -> None:
        if timestamp > self.last_watermark:
            if self.idle:
                self._set_idle(False)
            self.last_watermark = timestamp
            self._output.emit_watermark(timestamp)

    def on_periodic(self, now: int) -> None:
        """Emit the periodic watermark (or mark idle) if the interval has passed."""
        if now < self.next_periodic:
            return
        self.next_periodic = now + self._interval
        if self._idle_timeout is not None and now - self._last_activity >= self._idle_timeout:
            if not self.idle:
                self._set_idle(True)
            return
        if self.idle:
            return
        try:
            if self._per_record is not None:
                wm = self._per_record.on_periodic_emit()
            else:
                assert self._batch_generator is not None
                wm = self._batch_generator.current_watermark()
        except Exception as exc:
            raise user_error(exc, self._name + " watermark generator", None) from exc
        if wm is not None:
            self.emit_watermark(wm)

    def _set_idle(self, idle: bool) -> None:
        self.idle = idle
        emit_watermark_status(self._output, idle)

    def finish(self) -> None:
        """End of a bounded input: the maximum watermark, so every event-time window fires."""
        self.emit_watermark(MAX_WATERMARK)
