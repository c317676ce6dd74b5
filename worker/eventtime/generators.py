"""Watermark generators: what turns the timestamps a source has seen into watermarks.

Two shapes, both accepted by ``WatermarkStrategy.for_generator``:

* :class:`WatermarkGenerator` (a protocol) works per **batch**: ``on_batch`` sees the batch's
  timestamps (the built-in generators take their ``max`` at C speed) and may return a watermark
  to emit after the batch; ``current_watermark`` is asked every auto-watermark interval.
* :class:`PerRecordWatermarkGenerator` is Flink's shape, per **record**: ``on_event`` may return
  a watermark to emit right after that record, so the emitter
  (:mod:`streamjob.eventtime.emitter`) splits the batch there; ``on_periodic_emit`` is asked
  every interval. Costs a Python call per record: for punctuated streams and tests.

Bounded out-of-orderness follows Flink: ``watermark = max_timestamp - bound - 1``.
"""

from __future__ import annotations

import abc
from typing import Any, Protocol

from streamjob.runtime.events import MIN_WATERMARK


class WatermarkGenerator(Protocol):
    def on_batch(self, timestamps: list[int]) -> int | None:
        """Observe a batch; return a watermark to emit right away (punctuated) or None."""

    def current_watermark(self) -> int:
        """The watermark to emit at the periodic interval."""
        ...


class PerRecordWatermarkGenerator(abc.ABC):
    """A generator that sees every record (Flink's ``WatermarkGenerator``)."""

    @abc.abstractmethod
    def on_event(self, event: Any, timestamp: int) -> int | None:
        """Observe one record; return a watermark to emit right after it, or None."""

    def on_periodic_emit(self) -> int | None:
        """The watermark to emit at the periodic interval, or None for none."""
        return None


AnyWatermarkGenerator = WatermarkGenerator | PerRecordWatermarkGenerator


class BoundedOutOfOrdernessGenerator:
    """Periodic: ``max_timestamp - bound - 1`` (``bound = 0``: monotonous timestamps)."""

    __slots__ = ("_bound", "_max_ts")

    def __init__(self, bound_ms: int) -> None:
        self._bound = bound_ms
        self._max_ts = MIN_WATERMARK + bound_ms + 1

    def on_batch(self, timestamps: list[int]) -> int | None:
        if timestamps:
            top = max(timestamps)
            if top > self._max_ts:
                self._max_ts = top
        return None

    def current_watermark(self) -> int:
        return self._max_ts - self._bound - 1


class NoWatermarksGenerator:
    """Never emits a watermark (a bounded source still ends with the maximum one)."""

    def on_batch(self, timestamps: list[int]) -> int | None:
        return None

    def current_watermark(self) -> int:
        return MIN_WATERMARK


class PunctuatedBoundedOutOfOrderness(PerRecordWatermarkGenerator):
    """Per record: after each record, ``max_timestamp - bound - 1`` when it advanced.

    Deterministic regardless of batching and clocks, which is what property tests want.
    """

    def __init__(self, bound_ms: int) -> None:
        self._bound = bound_ms
        self._max_ts = MIN_WATERMARK + bound_ms + 1

    def on_event(self, event: Any, timestamp: int) -> int | None:
        if timestamp > self._max_ts:
            self._max_ts = timestamp
            return timestamp - self._bound - 1
        return None

    def on_periodic_emit(self) -> int | None:
        return self._max_ts - self._bound - 1
