"""``WatermarkStrategy``: how a source assigns timestamps and generates watermarks.

Generators work per batch (``on_batch`` sees the batch's timestamps) and are asked for the
current watermark periodically (``current_watermark``, every auto-watermark interval of
processing time). Bounded out-of-orderness follows Flink: ``wm = max_ts - bound - 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from streamjob import errors
from streamjob.duration import Duration
from streamjob.runtime.events import MIN_WATERMARK


class WatermarkGenerator(Protocol):
    def on_batch(self, timestamps: list[int]) -> int | None:
        """Observe a batch; return a watermark to emit right away (punctuated) or None."""

    def current_watermark(self) -> int:
        """The watermark to emit at the periodic interval."""
        ...


class BoundedOutOfOrdernessGenerator:
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
    def on_batch(self, timestamps: list[int]) -> int | None:
        return None

    def current_watermark(self) -> int:
        return MIN_WATERMARK


TimestampAssignerFn = Callable[[Any, int | None], int]


@dataclass(frozen=True)
class WatermarkStrategy:
    """Flink's WatermarkStrategy; build with the static constructors."""

    generator_factory: Callable[[], WatermarkGenerator]
    timestamp_assigner: TimestampAssignerFn | None = None
    idle_timeout_ms: int | None = None

    @staticmethod
    def for_bounded_out_of_orderness(max_out_of_orderness: Duration) -> WatermarkStrategy:
        bound = max_out_of_orderness.to_millis()
        return WatermarkStrategy(lambda: BoundedOutOfOrdernessGenerator(bound))

    @staticmethod
    def for_monotonous_timestamps() -> WatermarkStrategy:
        return WatermarkStrategy(lambda: BoundedOutOfOrdernessGenerator(0))

    @staticmethod
    def no_watermarks() -> WatermarkStrategy:
        return WatermarkStrategy(NoWatermarksGenerator)

    @staticmethod
    def for_generator(factory: Callable[[], WatermarkGenerator]) -> WatermarkStrategy:
        return WatermarkStrategy(factory)

    def with_timestamp_assigner(self, assigner: Any) -> WatermarkStrategy:
        """``assigner(value, record_timestamp) -> int`` or a ``TimestampAssigner`` object."""
        if hasattr(assigner, "extract_timestamp"):
            fn: TimestampAssignerFn = assigner.extract_timestamp
        elif callable(assigner):
            fn = assigner
        else:
            raise errors.JobDefinitionError(
                f"timestamp assigner {assigner!r} must be callable(value, record_timestamp) "
                "or have extract_timestamp(value, record_timestamp)"
            )
        return replace(self, timestamp_assigner=fn)

    def with_idleness(self, idle_timeout: Duration) -> WatermarkStrategy:
        if idle_timeout.to_millis() <= 0:
            raise errors.JobDefinitionError("with_idleness needs a positive timeout")
        return replace(self, idle_timeout_ms=idle_timeout.to_millis())

    def create_generator(self) -> WatermarkGenerator:
        return self.generator_factory()
