"""The context a trigger gets from the generic window operator: timers and state of one window.

The operator sets ``window`` (the internal ``(start, end)`` tuple) before each call; the current
key is the state backend's. Timers go to the operator's timer service with the window as their
namespace, so they are deduplicated per (key, window, time) and move with the key group.
"""

from __future__ import annotations

from typing import Any

from streamjob.clock import Clock
from streamjob.runtime.timers import InternalTimerService
from streamjob.state import StateDescriptor
from streamjob.windows.triggers import OnMergeContext
from streamjob.windows.window import Window, WindowTuple, to_window

_CACHE_LIMIT = 4096


class WindowTriggerContext(OnMergeContext):
    def __init__(self, backend: Any, timers: InternalTimerService, clock: Clock) -> None:
        self._backend = backend
        self._timers = timers
        self._clock = clock
        self.window: WindowTuple = (0, 0)
        #: the windows being merged into ``window`` (during ``on_merge`` only)
        self.merged: list[WindowTuple] = []
        self._objects: dict[WindowTuple, Window] = {}

    def window_object(self, window: WindowTuple) -> Window:
        """The user-facing window of a tuple, cached (triggers see one object per window)."""
        obj = self._objects.get(window)
        if obj is None:
            if len(self._objects) >= _CACHE_LIMIT:
                self._objects.clear()
            obj = self._objects[window] = to_window(window)
        return obj

    def get_current_processing_time(self) -> int:
        return self._clock.now_ms()

    def get_current_watermark(self) -> int:
        return self._timers.current_watermark

    def register_processing_time_timer(self, time: int) -> None:
        b = self._backend
        self._timers.register_processing_time(b.current_key, b.current_key_group, self.window, time)

    def register_event_time_timer(self, time: int) -> None:
        b = self._backend
        self._timers.register_event_time(b.current_key, b.current_key_group, self.window, time)

    def delete_processing_time_timer(self, time: int) -> None:
        self._timers.delete_processing_time(self._backend.current_key, self.window, time)

    def delete_event_time_timer(self, time: int) -> None:
        self._timers.delete_event_time(self._backend.current_key, self.window, time)

    def get_partitioned_state(self, state_descriptor: StateDescriptor) -> Any:
        state = self._backend.get_state(state_descriptor)
        state.set_current_namespace(self.window)
        return state

    def merge_partitioned_state(self, state_descriptor: StateDescriptor) -> None:
        if self.merged:
            state = self._backend.get_state(state_descriptor)
            state.merge_namespaces(self.window, self.merged)
