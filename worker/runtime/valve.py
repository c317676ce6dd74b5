"""The watermark valve: a task's watermark is the minimum over its active input channels.

Idle channels (a ``WatermarkStatus(idle=True)``) and finished channels leave the minimum; the
valve only ever moves forward and reports a new watermark only when the minimum advanced. When
every open channel is idle, the valve advances to the maximum watermark over them (Flink's
``StatusWatermarkValve``), and the task reports itself idle downstream.
"""

from __future__ import annotations

from streamjob.runtime.events import MIN_WATERMARK


class WatermarkValve:
    def __init__(self, num_channels: int) -> None:
        self._watermarks = [MIN_WATERMARK] * num_channels
        self._active = [True] * num_channels
        self._finished = [False] * num_channels
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
        self._finished[channel] = True
        self._watermarks[channel] = (1 << 63) - 1
        return self._advance()

    def all_idle(self) -> bool:
        """Every channel that is still open is idle (and at least one is open)."""
        open_channels = [i for i, done in enumerate(self._finished) if not done]
        return bool(open_channels) and not any(self._active[i] for i in open_channels)

    def _advance(self) -> int | None:
        active = [wm for wm, on in zip(self._watermarks, self._active, strict=True) if on]
        if active:
            low = min(active)
        elif self.all_idle():
            low = max(
                wm for wm, done in zip(self._watermarks, self._finished, strict=True) if not done
            )
        else:
            low = max(self._watermarks) if all(self._finished) else MIN_WATERMARK
        if low > self.current:
            self.current = low
            return low
        return None
