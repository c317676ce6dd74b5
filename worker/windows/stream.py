"""``WindowedStream``: ``keyed.window(assigner)`` then a trigger, lateness, and a window function.

Everything is checked here, when the job is built (assigner, trigger, lateness, functions).
:func:`make_window_operator` picks the operator per subtask: tumbling and sliding time windows
with their default trigger run window-major (:mod:`streamjob.windows.fast_operator`); custom
triggers, sessions and global windows run on the generic operator
(:mod:`streamjob.windows.generic_operator`). Both have the same semantics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamjob import errors, functions
from streamjob.duration import Duration
from streamjob.runtime.operators import keyed
from streamjob.runtime.operators.base import StreamOperator
from streamjob.state.aggregate import as_reduce_callable, check_aggregate_function
from streamjob.windows.assigners import (
    MergingWindowAssigner,
    SlidingEventTimeWindows,
    SlidingProcessingTimeWindows,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
    WindowAssigner,
    millis,
)
from streamjob.windows.functions import WindowContents, WindowResults
from streamjob.windows.operator_base import WindowSpec
from streamjob.windows.triggers import EventTimeTrigger, ProcessingTimeTrigger, Trigger

if TYPE_CHECKING:
    from streamjob.api.datastream import DataStream, KeyedStream

_FAST_ASSIGNERS = (
    TumblingEventTimeWindows,
    SlidingEventTimeWindows,
    TumblingProcessingTimeWindows,
    SlidingProcessingTimeWindows,
)


def uses_fast_path(spec: WindowSpec) -> bool:
    """Aligned time windows with their default trigger keep windows window-major."""
    assigner, trigger = spec.assigner, spec.trigger
    if type(assigner) not in _FAST_ASSIGNERS:
        return False
    if trigger is None:
        return True
    default = EventTimeTrigger if assigner.is_event_time() else ProcessingTimeTrigger
    return type(trigger) is default


def make_window_operator(spec: WindowSpec) -> StreamOperator:
    from streamjob.windows.fast_operator import FastWindowOperator
    from streamjob.windows.generic_operator import WindowOperator

    return FastWindowOperator(spec) if uses_fast_path(spec) else WindowOperator(spec)


class WindowedStream:
    """A keyed stream cut into windows; ends with reduce/aggregate/process/apply."""

    def __init__(self, keyed_stream: KeyedStream, window_assigner: WindowAssigner) -> None:
        if not isinstance(window_assigner, WindowAssigner):
            raise errors.JobDefinitionError(
                "window() takes a WindowAssigner such as TumblingEventTimeWindows.of("
                f"Duration.of_seconds(10)), got {window_assigner!r}"
            )
        self._stream = keyed_stream
        self._assigner = window_assigner
        self._trigger: Trigger | None = None
        self._lateness = 0
        self._late_tag: str | None = None

    # -- configuration ----------------------------------------------------------------------
    def trigger(self, trigger: Trigger) -> WindowedStream:
        if not isinstance(trigger, Trigger):
            raise errors.JobDefinitionError(f"trigger() takes a Trigger, got {trigger!r}")
        if isinstance(self._assigner, MergingWindowAssigner) and not trigger.can_merge():
            raise errors.JobDefinitionError(
                f"{self._assigner!r} merges windows, but the trigger {trigger!r} cannot merge "
                "(implement can_merge() and on_merge())"
            )
        self._trigger = trigger
        return self

    def allowed_lateness(self, lateness: Duration | int) -> WindowedStream:
        ms = millis(lateness, "allowed_lateness")
        if ms < 0:
            raise errors.JobDefinitionError(f"allowed_lateness must be >= 0 ms, got {ms}")
        self._lateness = ms
        return self

    def side_output_late_data(self, output_tag: functions.OutputTag) -> WindowedStream:
        if not isinstance(output_tag, functions.OutputTag):
            raise errors.JobDefinitionError(
                f"side_output_late_data takes an OutputTag, got {output_tag!r}"
            )
        self._late_tag = output_tag.tag_id
        return self

    # -- window functions -------------------------------------------------------------------
    def reduce(
        self, reduce_function: Any, window_function: Any = None, name: str | None = None
    ) -> DataStream:
        """Incremental reduce; with ``window_function`` it sees the single reduced value."""
        try:
            fn = as_reduce_callable(reduce_function, what="WindowedStream.reduce")
        except TypeError as exc:
            raise errors.JobDefinitionError(str(exc)) from None
        contents = WindowContents("reduce", reduce=fn)
        return self._build(contents, window_function, [reduce_function], "Reduce", name)

    def aggregate(
        self, aggregate_function: Any, window_function: Any = None, name: str | None = None
    ) -> DataStream:
        """Incremental aggregation (``AggregateFunction``); with ``window_function`` it sees the
        single aggregate result."""
        try:
            check_aggregate_function(aggregate_function, what="WindowedStream.aggregate")
        except TypeError as exc:
            raise errors.JobDefinitionError(str(exc)) from None
        contents = WindowContents("aggregate", aggregate=aggregate_function)
        return self._build(contents, window_function, [aggregate_function], "Aggregate", name)

    def process(self, process_window_function: Any, name: str | None = None) -> DataStream:
        """A ``ProcessWindowFunction`` over all elements of each window."""
        if process_window_function is None:
            raise errors.JobDefinitionError("process() needs a ProcessWindowFunction")
        return self._build(WindowContents("list"), process_window_function, [], "Process", name)

    def apply(self, window_function: Any, name: str | None = None) -> DataStream:
        """A ``WindowFunction`` (``apply(key, window, inputs)``) over all elements."""
        if window_function is None:
            raise errors.JobDefinitionError("apply() needs a WindowFunction")
        return self._build(WindowContents("list"), window_function, [], "Apply", name)

    def _aggregation(self, kind: str, field: int | str | None) -> DataStream:
        return self.reduce(keyed.aggregation(kind, field), name=f"Window {kind}({field})")

    def sum(self, position_to_sum: int | str | None = None) -> DataStream:
        return self._aggregation("sum", position_to_sum)

    def min(self, position_to_min: int | str | None = None) -> DataStream:
        return self._aggregation("min", position_to_min)

    def max(self, position_to_max: int | str | None = None) -> DataStream:
        return self._aggregation("max", position_to_max)

    def min_by(self, position_to_min_by: int | str | None = None) -> DataStream:
        return self._aggregation("min_by", position_to_min_by)

    def max_by(self, position_to_max_by: int | str | None = None) -> DataStream:
        return self._aggregation("max_by", position_to_max_by)

    def _build(
        self,
        contents: WindowContents,
        window_function: Any,
        functions_used: list[Any],
        label: str,
        name: str | None,
    ) -> DataStream:
        WindowResults(contents, window_function)  # checks the window function now
        spec = WindowSpec(
            assigner=self._assigner,
            contents=contents,
            window_function=window_function,
            trigger=self._trigger,
            allowed_lateness=self._lateness,
            late_tag=self._late_tag,
            user_functions=[*functions_used, window_function],
        )
        trigger = self._trigger or self._assigner.get_default_trigger()
        title = name or f"Window({self._assigner!r}, {type(trigger).__name__}, {label})"
        env = self._stream.env
        return self._stream._keyed(title, lambda: make_window_operator(env._copy(spec)))
