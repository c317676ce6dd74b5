"""Processing-time clocks: the system clock, and a manual one that tests drive by hand.

Everything that reads processing time (TTL, processing-time timers and windows, periodic
watermark emission) takes a :class:`Clock`, so tests never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch (processing time)."""
        ...


class SystemClock:
    """Wall-clock processing time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told to; listeners run on every advance.

    The runtime registers a listener so that processing-time timers due at the new time fire.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self._listeners: list[Callable[[int], None]] = []

    def now_ms(self) -> int:
        return self._now

    def advance(self, millis: int) -> None:
        if millis < 0:
            raise ValueError("a ManualClock never goes back")
        self.set(self._now + millis)

    def set(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise ValueError(f"a ManualClock never goes back ({now_ms} < {self._now})")
        self._now = now_ms
        for listener in list(self._listeners):
            listener(now_ms)

    def add_listener(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[int], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
