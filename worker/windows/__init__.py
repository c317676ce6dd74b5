"""``streamjob.windows``: window assigners, triggers and window functions (Flink's names).

Re-exports only: assigners in :mod:`~streamjob.windows.assigners`, triggers in
:mod:`~streamjob.windows.triggers`, functions in :mod:`~streamjob.windows.functions`, the
stream in :mod:`~streamjob.windows.stream`, the operators in
:mod:`~streamjob.windows.fast_operator` and :mod:`~streamjob.windows.generic_operator`.
"""

from streamjob.state.aggregate import AggregateFunction
from streamjob.windows.assigners import (
    EventTimeSessionWindows,
    GlobalWindows,
    MergingWindowAssigner,
    ProcessingTimeSessionWindows,
    SlidingEventTimeWindows,
    SlidingProcessingTimeWindows,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
    WindowAssigner,
)
from streamjob.windows.functions import (
    KeyedStateStore,
    ProcessWindowFunction,
    WindowFunction,
)
from streamjob.windows.stream import WindowedStream
from streamjob.windows.triggers import (
    CountTrigger,
    EventTimeTrigger,
    NeverTrigger,
    OnMergeContext,
    ProcessingTimeTrigger,
    PurgingTrigger,
    Trigger,
    TriggerContext,
    TriggerResult,
)
from streamjob.windows.window import GlobalWindow, TimeWindow, Window

__all__ = [
    "AggregateFunction",
    "CountTrigger",
    "EventTimeSessionWindows",
    "EventTimeTrigger",
    "GlobalWindow",
    "GlobalWindows",
    "KeyedStateStore",
    "MergingWindowAssigner",
    "NeverTrigger",
    "OnMergeContext",
    "ProcessWindowFunction",
    "ProcessingTimeSessionWindows",
    "ProcessingTimeTrigger",
    "PurgingTrigger",
    "SlidingEventTimeWindows",
    "SlidingProcessingTimeWindows",
    "TimeWindow",
    "Trigger",
    "TriggerContext",
    "TriggerResult",
    "TumblingEventTimeWindows",
    "TumblingProcessingTimeWindows",
    "Window",
    "WindowAssigner",
    "WindowFunction",
    "WindowedStream",
]
