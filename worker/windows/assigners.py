"""Window assigners (Flink's names): which windows a record belongs to.

Built-ins: tumbling and sliding windows in event and processing time, session (merging)
windows in event and processing time (fixed or dynamic gap), and ``GlobalWindows``. Bad sizes,
slides, offsets and gaps raise :class:`~streamjob.errors.JobDefinitionError` here, when the job
is built.

The runtime calls :meth:`WindowAssigner.assign` (``(start, end)`` tuples, no objects); a custom
assigner only implements Flink's ``assign_windows`` returning ``TimeWindow`` objects. Merging
assigners also have :meth:`MergingWindowAssigner.merge` on tuples; a custom one implements
``merge_windows(windows, callback)``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from streamjob import errors
from streamjob.duration import Duration
from streamjob.windows.window import GLOBAL_WINDOW, TimeWindow, Window, WindowTuple, to_tuple

if TYPE_CHECKING:
    from streamjob.windows.triggers import Trigger


def millis(value: Duration | int, what: str) -> int:
    """Whole milliseconds of a Duration or an int; anything else is a build-time error."""
    if isinstance(value, Duration):
        return value.to_millis()
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise errors.JobDefinitionError(f"{what} takes a Duration or whole milliseconds, got {value!r}")


class WindowAssignerContext:
    """What ``assign_windows`` may ask: the current processing time."""

    __slots__ = ("_now",)

    def __init__(self, now: int) -> None:
        self._now = now

    def get_current_processing_time(self) -> int:
        return self._now


class WindowAssigner(abc.ABC):
    @abc.abstractmethod
    def assign_windows(
        self, element: Any, timestamp: int | None, context: WindowAssignerContext
    ) -> Collection[Window]:
        """The windows ``element`` (with event time ``timestamp``) belongs to."""

    @abc.abstractmethod
    def get_default_trigger(self) -> Trigger: ...

    @abc.abstractmethod
    def is_event_time(self) -> bool: ...

    def assign(self, element: Any, timestamp: int, now: int) -> Sequence[WindowTuple]:
        """The runtime's entry point: windows as ``(start, end)`` tuples."""
        return [
            to_tuple(w) for w in self.assign_windows(element, timestamp, WindowAssignerContext(now))
        ]


class MergeCallback(Protocol):
    def merge(self, to_be_merged: Collection[TimeWindow], merge_result: TimeWindow) -> None: ...


class MergingWindowAssigner(WindowAssigner):
    """An assigner whose windows merge (sessions)."""

    @abc.abstractmethod
    def merge_windows(self, windows: Collection[TimeWindow], callback: MergeCallback) -> None:
        """Report each group of ``windows`` that should become one window."""

    def merge(self, windows: Sequence[WindowTuple]) -> list[tuple[WindowTuple, list[WindowTuple]]]:
        """``(merge_result, merged_windows)`` per group of more than one window."""
        found: list[tuple[WindowTuple, list[WindowTuple]]] = []

        class _Collect:
            def merge(self, to_be_merged: Collection[TimeWindow], merge_result: TimeWindow) -> None:
                found.append((to_tuple(merge_result), [to_tuple(w) for w in to_be_merged]))

        self.merge_windows([TimeWindow(s, e) for s, e in windows], _Collect())
        return found


def merge_time_windows(
    windows: Sequence[WindowTuple],
) -> list[tuple[WindowTuple, list[WindowTuple]]]:
    """Flink's ``TimeWindow.mergeWindows`` on tuples: sort by start, merge overlapping or
    touching windows; report each group of more than one window with its cover."""
    groups: list[tuple[WindowTuple, list[WindowTuple]]] = []
    cover: WindowTuple | None = None
    members: list[WindowTuple] = []
    for w in sorted(set(windows)):
        if cover is not None and cover[0] <= w[1] and cover[1] >= w[0]:
            cover = (min(cover[0], w[0]), max(cover[1], w[1]))
            members.append(w)
            continue
        if cover is not None and len(members) > 1:
            groups.append((cover, members))
        cover, members = w, [w]
    if cover is not None and len(members) > 1:
        groups.append((cover, members))
    return groups


# -- tumbling and sliding -----------------------------------------------------------------


class _AlignedWindows(WindowAssigner):
    """Tumbling (``slide == size``) and sliding windows aligned to ``offset``."""

    event_time: bool

    def __init__(self, size: int, slide: int, offset: int, what: str) -> None:
        if size <= 0:
            raise errors.JobDefinitionError(f"{what}: the window size must be > 0 ms, got {size}")
        if slide <= 0:
            raise errors.JobDefinitionError(f"{what}: the slide must be > 0 ms, got {slide}")
        if slide > size:
            raise errors.JobDefinitionError(
                f"{what}: the slide ({slide} ms) is larger than the size ({size} ms), so some "
                "records would belong to no window; use a slide <= size"
            )
        if abs(offset) >= slide:
            raise errors.JobDefinitionError(
                f"{what}: the offset must satisfy abs(offset) < slide ({slide} ms), got {offset}"
            )
        self.size = size
        self.slide = slide
        self.offset = offset

    def assign_windows(
        self, element: Any, timestamp: int | None, context: WindowAssignerContext
    ) -> Collection[Window]:
        now = context.get_current_processing_time()
        return [TimeWindow(s, e) for s, e in self.assign(element, timestamp, now)]  # type: ignore[arg-type]

    def assign(self, element: Any, timestamp: int, now: int) -> Sequence[WindowTuple]:
        ts = timestamp if self.event_time else now
        size, slide = self.size, self.slide
        last_start = ts - (ts - self.offset) % slide
        return [(start, start + size) for start in range(last_start, ts - size, -slide)]

    def is_event_time(self) -> bool:
        return self.event_time

    def get_default_trigger(self) -> Trigger:
        from streamjob.windows import triggers

        if self.event_time:
            return triggers.EventTimeTrigger.create()
        return triggers.ProcessingTimeTrigger.create()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, slide={self.slide}, offset={self.offset})"


class TumblingEventTimeWindows(_AlignedWindows):
    event_time = True

    @staticmethod
    def of(size: Duration | int, offset: Duration | int = 0) -> TumblingEventTimeWindows:
        n = millis(size, "TumblingEventTimeWindows.of")
        return TumblingEventTimeWindows(n, n, millis(offset, "offset"), "TumblingEventTimeWindows")


class SlidingEventTimeWindows(_AlignedWindows):
    event_time = True

    @staticmethod
    def of(
        size: Duration | int, slide: Duration | int, offset: Duration | int = 0
    ) -> SlidingEventTimeWindows:
        return SlidingEventTimeWindows(
            millis(size, "SlidingEventTimeWindows.of"),
            millis(slide, "SlidingEventTimeWindows.of"),
            millis(offset, "offset"),
            "SlidingEventTimeWindows",
        )


class TumblingProcessingTimeWindows(_AlignedWindows):
    event_time = False

    @staticmethod
    def of(size: Duration | int, offset: Duration | int = 0) -> TumblingProcessingTimeWindows:
        n = millis(size, "TumblingProcessingTimeWindows.of")
        return TumblingProcessingTimeWindows(
            n, n, millis(offset, "offset"), "TumblingProcessingTimeWindows"
        )


class SlidingProcessingTimeWindows(_AlignedWindows):
    event_time = False

    @staticmethod
    def of(
        size: Duration | int, slide: Duration | int, offset: Duration | int = 0
    ) -> SlidingProcessingTimeWindows:
        return SlidingProcessingTimeWindows(
            millis(size, "SlidingProcessingTimeWindows.of"),
            millis(slide, "SlidingProcessingTimeWindows.of"),
            millis(offset, "offset"),
            "SlidingProcessingTimeWindows",
        )


# -- sessions -------------------------------------------------------------------------------


class _SessionWindows(MergingWindowAssigner):
    """``[ts, ts + gap)`` per record, merged while they overlap or touch."""

    event_time: bool

    def __init__(self, gap: int, extractor: Callable[[Any], Any] | None, what: str) -> None:
        if extractor is None and gap <= 0:
            raise errors.JobDefinitionError(
                f"{what}: the session gap must be > 0 ms, got {gap} (a zero gap would make every "
                "record its own empty session)"
            )
        self.gap = gap
        self.extractor = extractor
        self._what = what

    def assign_windows(
        self, element: Any, timestamp: int | None, context: WindowAssignerContext
    ) -> Collection[Window]:
        now = context.get_current_processing_time()
        return [TimeWindow(s, e) for s, e in self.assign(element, timestamp, now)]  # type: ignore[arg-type]

    def assign(self, element: Any, timestamp: int, now: int) -> Sequence[WindowTuple]:
        ts = timestamp if self.event_time else now
        gap = self.gap
        if self.extractor is not None:
            gap = self.extractor(element)
            if isinstance(gap, Duration):
                gap = gap.to_millis()
            if not isinstance(gap, int) or gap <= 0:
                raise errors.JobDefinitionError(
                    f"{self._what}: the dynamic gap extractor returned {gap!r} for {element!r}; "
                    "it must return a positive number of milliseconds (or a Duration)"
                )
        return ((ts, ts + gap),)

    def merge_windows(self, windows: Collection[TimeWindow], callback: MergeCallback) -> None:
        for result, merged in merge_time_windows([(w.start, w.end) for w in windows]):
            callback.merge([TimeWindow(s, e) for s, e in merged], TimeWindow(*result))

    def merge(self, windows: Sequence[WindowTuple]) -> list[tuple[WindowTuple, list[WindowTuple]]]:
        return merge_time_windows(windows)

    def is_event_time(self) -> bool:
        return self.event_time

    def get_default_trigger(self) -> Trigger:
        from streamjob.windows import triggers

        if self.event_time:
            return triggers.EventTimeTrigger.create()
        return triggers.ProcessingTimeTrigger.create()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gap={self.gap})"


class EventTimeSessionWindows(_SessionWindows):
    event_time = True

    @staticmethod
    def with_gap(gap: Duration | int) -> EventTimeSessionWindows:
        return EventTimeSessionWindows(
            millis(gap, "EventTimeSessionWindows.with_gap"), None, "EventTimeSessionWindows"
        )

    @staticmethod
    def with_dynamic_gap(extractor: Callable[[Any], Any]) -> EventTimeSessionWindows:
        """``extractor(element)`` returns the gap (ms or Duration) for that element."""
        if not callable(extractor):
            raise errors.JobDefinitionError("with_dynamic_gap needs a callable(element) -> gap")
        return EventTimeSessionWindows(0, extractor, "EventTimeSessionWindows")


class ProcessingTimeSessionWindows(_SessionWindows):
    event_time = False

    @staticmethod
    def with_gap(gap: Duration | int) -> ProcessingTimeSessionWindows:
        return ProcessingTimeSessionWindows(
            millis(gap, "ProcessingTimeSessionWindows.with_gap"),
            None,
            "ProcessingTimeSessionWindows",
        )

    @staticmethod
    def with_dynamic_gap(extractor: Callable[[Any], Any]) -> ProcessingTimeSessionWindows:
        if not callable(extractor):
            raise errors.JobDefinitionError("with_dynamic_gap needs a callable(element) -> gap")
        return ProcessingTimeSessionWindows(0, extractor, "ProcessingTimeSessionWindows")


# -- global -------------------------------------------------------------------------------------


class GlobalWindows(WindowAssigner):
    """Every record in one window per key; it fires only through a trigger (e.g. CountTrigger)."""

    _ONE = (GLOBAL_WINDOW,)

    @staticmethod
    def create() -> GlobalWindows:
        return GlobalWindows()

    def assign_windows(
        self, element: Any, timestamp: int | None, context: WindowAssignerContext
    ) -> Collection[Window]:
        from streamjob.windows.window import GlobalWindow

        return [GlobalWindow.get()]

    def assign(self, element: Any, timestamp: int, now: int) -> Sequence[WindowTuple]:
        return self._ONE

    def is_event_time(self) -> bool:
        return False

    def get_default_trigger(self) -> Trigger:
        from streamjob.windows import triggers

        return triggers.NeverTrigger()

    def __repr__(self) -> str:
        return "GlobalWindows()"
