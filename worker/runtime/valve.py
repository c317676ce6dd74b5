"""The watermark valve: a task's watermark is the minimum over its active input channels.

Idle channels (a ``WatermarkStatus(idle=True)``) and finished channels leave the minimum; the
valve only ever moves forward and reports a new watermark only when the minimum advanced.
"""

from __future__ import annotations

from streamjob.runtime.events import MIN_WATERMARK


class WatermarkValve:
    def __init__(self, num_channels: int) -> None:
        self._watermarks = [MIN_WATERMARK] * num_channels
        self._active = [True] * num_channels
        self.current = MIN_WATERMARK

    def on_watermark(self, channel: int, timestamp: int) -> int | None:
        if timestamp > self._watermarks[channel]:
            self._watermarks[channel] = timestamp
        self._active[channel] = True
        return self._advance()

    def on_idle(self, channel: int, idle: bool) -> int | None:
        self._active[channel] = not idle
        return self._advance()

    def on_finished(self, channel: int) -> int | None:
        self._active[channel] = False
        self._watermarks[channel] = (1 << 63) - 1
        return self._advance()

    def all_idle(self) -> bool:
        return not any(self._active)

    def _advance(self) -> int | None:
        active = [wm for wm, on in zip(self._watermarks, self._active, strict=True) if on]
        if not active:
            return None
        low = min(active)
        if low > self.current:
            self.current = low
            return low
        return None
