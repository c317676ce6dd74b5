"""Triggers (Flink's): when a window's contents are emitted, and when they are purged.

A trigger sees each element added to a window (``on_element``) and the timers it registered
through its context (``on_event_time``, ``on_processing_time``), and answers with a
:class:`TriggerResult`. Its timers are per key and window (the timer namespace is the window);
its state (``ctx.get_partitioned_state``) is per key and window too. Triggers of merging windows
implement ``can_merge``/``on_merge``.

Built-ins: ``EventTimeTrigger`` (default of event-time windows), ``ProcessingTimeTrigger``
(default of processing-time windows), ``CountTrigger``, ``PurgingTrigger`` and
``NeverTrigger`` (default of ``GlobalWindows``).
"""

from __future__ import annotations

import abc
import operator
from enum import Enum
from typing import Any

from streamjob import errors
from streamjob.state import ReducingStateDescriptor, State, StateDescriptor
from streamjob.windows.window import Window


class TriggerResult(Enum):
    CONTINUE = (False, False)
    FIRE_AND_PURGE = (True, True)
    FIRE = (True, False)
    PURGE = (False, True)

    def __init__(self, fire: bool, purge: bool) -> None:
        self.fire = fire  # plain attributes: read per record on the generic path
        self.purge = purge

    def is_fire(self) -> bool:
        return self.fire

    def is_purge(self) -> bool:
        return self.purge


class TriggerContext(abc.ABC):
    """What a trigger may do for the current key and window."""

    @abc.abstractmethod
    def get_current_processing_time(self) -> int: ...

    @abc.abstractmethod
    def get_current_watermark(self) -> int: ...

    @abc.abstractmethod
    def register_processing_time_timer(self, time: int) -> None: ...

    @abc.abstractmethod
    def register_event_time_timer(self, time: int) -> None: ...

    @abc.abstractmethod
    def delete_processing_time_timer(self, time: int) -> None: ...

    @abc.abstractmethod
    def delete_event_time_timer(self, time: int) -> None: ...

    @abc.abstractmethod
    def get_partitioned_state(self, state_descriptor: StateDescriptor) -> Any:
        """Keyed state scoped to the current key and window."""


class OnMergeContext(TriggerContext):
    @abc.abstractmethod
    def merge_partitioned_state(self, state_descriptor: StateDescriptor) -> None:
        """Merge this state of the merged windows into the merge result."""


class Trigger(abc.ABC):
    @abc.abstractmethod
    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: TriggerContext
    ) -> TriggerResult: ...

    @abc.abstractmethod
    def on_processing_time(
        self, time: int, window: Window, ctx: TriggerContext
    ) -> TriggerResult: ...

    @abc.abstractmethod
    def on_event_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult: ...

    def can_merge(self) -> bool:
        return False

    def on_merge(self, window: Window, ctx: OnMergeContext) -> None:
        raise errors.JobDefinitionError(f"{type(self).__name__} does not support merging windows")

    @abc.abstractmethod
    def clear(self, window: Window, ctx: TriggerContext) -> None:
        """Remove the timers and state this trigger holds for ``window``."""


class EventTimeTrigger(Trigger):
    """Fires once the watermark passes the window's end; late elements fire again at once."""

    @staticmethod
    def create() -> EventTimeTrigger:
        return EventTimeTrigger()

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: TriggerContext
    ) -> TriggerResult:
        max_ts = window.max_timestamp()
        if max_ts <= ctx.get_current_watermark():
            return TriggerResult.FIRE  # late but allowed: fire right away
        ctx.register_event_time_timer(max_ts)
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.FIRE if time == window.max_timestamp() else TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: Window, ctx: OnMergeContext) -> None:
        # Only if the watermark has not passed the merged window: otherwise on_element fires.
        max_ts = window.max_timestamp()
        if max_ts > ctx.get_current_watermark():
            ctx.register_event_time_timer(max_ts)

    def clear(self, window: Window, ctx: TriggerContext) -> None:
        ctx.delete_event_time_timer(window.max_timestamp())

    def __repr__(self) -> str:
        return "EventTimeTrigger()"


class ProcessingTimeTrigger(Trigger):
    """Fires once processing time passes the window's end."""

    @staticmethod
    def create() -> ProcessingTimeTrigger:
        return ProcessingTimeTrigger()

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: TriggerContext
    ) -> TriggerResult:
        ctx.register_processing_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.FIRE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: Window, ctx: OnMergeContext) -> None:
        max_ts = window.max_timestamp()
        if max_ts > ctx.get_current_processing_time():
            ctx.register_processing_time_timer(max_ts)

    def clear(self, window: Window, ctx: TriggerContext) -> None:
        ctx.delete_processing_time_timer(window.max_timestamp())

    def __repr__(self) -> str:
        return "ProcessingTimeTrigger()"


class CountTrigger(Trigger):
    """Fires every ``max_count`` elements of a window (the count restarts after each firing)."""

    def __init__(self, max_count: int) -> None:
        if not isinstance(max_count, int) or isinstance(max_count, bool) or max_count < 1:
            raise errors.JobDefinitionError(f"CountTrigger needs a count >= 1, got {max_count!r}")
        self.max_count = max_count
        self._descriptor = ReducingStateDescriptor("_trigger_count", operator.add)

    @staticmethod
    def of(max_count: int) -> CountTrigger:
        return CountTrigger(max_count)

    def _count(self, ctx: TriggerContext) -> State:
        state: State = ctx.get_partitioned_state(self._descriptor)
        return state

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: TriggerContext
    ) -> TriggerResult:
        count: Any = self._count(ctx)
        count.add(1)
        if count.get() >= self.max_count:
            count.clear()
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: Window, ctx: OnMergeContext) -> None:
        ctx.merge_partitioned_state(self._descriptor)

    def clear(self, window: Window, ctx: TriggerContext) -> None:
        self._count(ctx).clear()

    def __repr__(self) -> str:
        return f"CountTrigger({self.max_count})"


class PurgingTrigger(Trigger):
    """Turns every FIRE of the nested trigger into FIRE_AND_PURGE."""

    def __init__(self, nested: Trigger) -> None:
        if not isinstance(nested, Trigger):
            raise errors.JobDefinitionError(f"PurgingTrigger.of needs a Trigger, got {nested!r}")
        self.nested = nested

    @staticmethod
    def of(nested: Trigger) -> PurgingTrigger:
        return PurgingTrigger(nested)

    @staticmethod
    def _purging(result: TriggerResult) -> TriggerResult:
        return TriggerResult.FIRE_AND_PURGE if result.is_fire() else result

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: TriggerContext
    ) -> TriggerResult:
        return self._purging(self.nested.on_element(element, timestamp, window, ctx))

    def on_event_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return self._purging(self.nested.on_event_time(time, window, ctx))

    def on_processing_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return self._purging(self.nested.on_processing_time(time, window, ctx))

    def can_merge(self) -> bool:
        return self.nested.can_merge()

    def on_merge(self, window: Window, ctx: OnMergeContext) -> None:
        self.nested.on_merge(window, ctx)

    def clear(self, window: Window, ctx: TriggerContext) -> None:
        self.nested.clear(window, ctx)

    def __repr__(self) -> str:
        return f"PurgingTrigger({self.nested!r})"


class NeverTrigger(Trigger):
    """Never fires (``GlobalWindows`` without a trigger)."""

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: TriggerContext
    ) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: Window, ctx: OnMergeContext) -> None:
        return None

    def clear(self, window: Window, ctx: TriggerContext) -> None:
        return None
