"""``WatermarkStrategy``: how a source assigns timestamps and generates watermarks.

A strategy is a generator factory (:mod:`streamjob.eventtime.generators`), an optional timestamp
assigner and an optional idle timeout. The runtime side lives in
:mod:`streamjob.eventtime.emitter`, used by sources and by ``assign_timestamps_and_watermarks``.
Bounded out-of-orderness follows Flink: ``wm = max_ts - bound - 1``. Bad arguments fail here,
when the job is built.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from streamjob import errors
from streamjob.duration import Duration
from streamjob.eventtime.generators import (
    AnyWatermarkGenerator,
    BoundedOutOfOrdernessGenerator,
    NoWatermarksGenerator,
    PerRecordWatermarkGenerator,
    PunctuatedBoundedOutOfOrderness,
    WatermarkGenerator,
)

__all__ = [
    "BoundedOutOfOrdernessGenerator",
    "NoWatermarksGenerator",
    "PerRecordWatermarkGenerator",
    "PunctuatedBoundedOutOfOrderness",
    "TimestampAssigner",
    "WatermarkGenerator",
    "WatermarkStrategy",
]

TimestampAssignerFn = Callable[[Any, int | None], int]


class TimestampAssigner(abc.ABC):
    """PyFlink's ``TimestampAssigner``: the event time of a record, in epoch milliseconds."""

    @abc.abstractmethod
    def extract_timestamp(self, value: Any, record_timestamp: int | None) -> int:
        """``record_timestamp`` is the source's own timestamp, or None if it has none."""


def _millis(value: Duration | int, what: str) -> int:
    if isinstance(value, Duration):
        return value.to_millis()
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise errors.JobDefinitionError(f"{what} takes a Duration or whole milliseconds, got {value!r}")


@dataclass(frozen=True)
class WatermarkStrategy:
    """Flink's WatermarkStrategy; build with the static constructors."""

    generator_factory: Callable[[], AnyWatermarkGenerator]
    timestamp_assigner: TimestampAssignerFn | None = None
    idle_timeout_ms: int | None = None

    @staticmethod
    def for_bounded_out_of_orderness(max_out_of_orderness: Duration | int) -> WatermarkStrategy:
        bound = _millis(max_out_of_orderness, "for_bounded_out_of_orderness")
        if bound < 0:
            raise errors.JobDefinitionError(f"the out-of-orderness bound must be >= 0, got {bound}")
        return WatermarkStrategy(lambda: BoundedOutOfOrdernessGenerator(bound))

    @staticmethod
    def for_monotonous_timestamps() -> WatermarkStrategy:
        return WatermarkStrategy(lambda: BoundedOutOfOrdernessGenerator(0))

    @staticmethod
    def no_watermarks() -> WatermarkStrategy:
        return WatermarkStrategy(NoWatermarksGenerator)

    @staticmethod
    def for_generator(factory: Callable[[], AnyWatermarkGenerator]) -> WatermarkStrategy:
        """A custom generator: a batch ``WatermarkGenerator`` or a
        :class:`PerRecordWatermarkGenerator`, made fresh per subtask by ``factory()``."""
        if not callable(factory):
            raise errors.JobDefinitionError(
                f"for_generator takes a factory (a class or a lambda) returning a generator, "
                f"got {factory!r}"
            )
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

    def with_idleness(self, idle_timeout: Duration | int) -> WatermarkStrategy:
        """Mark the input idle after ``idle_timeout`` of processing time without records, so
        it stops holding back the watermark downstream; it becomes active with its next record."""
        millis = _millis(idle_timeout, "with_idleness")
        if millis <= 0:
            raise errors.JobDefinitionError("with_idleness needs a positive timeout")
        return replace(self, idle_timeout_ms=millis)

    def create_generator(self) -> AnyWatermarkGenerator:
        generator = self.generator_factory()
        if not isinstance(generator, PerRecordWatermarkGenerator) and not (
            callable(getattr(generator, "on_batch", None))
            and callable(getattr(generator, "current_watermark", None))
        ):
            raise errors.JobDefinitionError(
                f"the watermark generator {generator!r} needs on_batch(timestamps) and "
                "current_watermark(), or must subclass PerRecordWatermarkGenerator "
                "(on_event(event, timestamp), on_periodic_emit())"
            )
        return generator
