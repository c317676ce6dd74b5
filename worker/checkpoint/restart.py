"""Restart strategies (Flink's), pure: they decide whether and when a failed job restarts.

* ``exponential-delay`` (the default): 1 s initial backoff, x1.5, at most 60 s, jitter 0.1;
  the backoff resets after a stable run (one hour without failure by default).
* ``fixed-delay``: N attempts with a fixed delay.
* ``failure-rate``: restart unless more than N failures happened within the interval.
* ``none``: never restart.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


class RestartStrategy:
    name = "none"

    def on_failure(self, now_ms: int) -> float | None:
        """Delay in seconds before restarting, or None to give up."""
        return None

    def describe(self) -> str:
        return self.name


class NoRestart(RestartStrategy):
    pass


@dataclass
class FixedDelayRestart(RestartStrategy):
    attempts: int = 3
    delay_s: float = 1.0
    used: int = 0
    name = "fixed-delay"

    def on_failure(self, now_ms: int) -> float | None:
        if self.used >= self.attempts:
            return None
        self.used += 1
        return self.delay_s

    def describe(self) -> str:
        return f"fixed-delay ({self.attempts} attempts, {self.delay_s}s apart)"


@dataclass
class ExponentialDelayRestart(RestartStrategy):
    initial_s: float = 1.0
    multiplier: float = 1.5
    max_s: float = 60.0
    jitter: float = 0.1
    reset_after_s: float = 3600.0
    max_attempts: int | None = None
    rng: random.Random = field(default_factory=random.Random)
    _current: float = 0.0
    _last_failure_ms: int | None = None
    attempts: int = 0
    name = "exponential-delay"

    def on_failure(self, now_ms: int) -> float | None:
        if self.max_attempts is not None and self.attempts >= self.max_attempts:
            return None
        last = self._last_failure_ms
        if last is None or now_ms - last > self.reset_after_s * 1000:
            self._current = self.initial_s
        else:
            self._current = min(self.max_s, self._current * self.multiplier)
        self._last_failure_ms = now_ms
        self.attempts += 1
        spread = self._current * self.jitter
        return max(0.0, self._current + self.rng.uniform(-spread, spread))

    def describe(self) -> str:
        return (
            f"exponential-delay ({self.initial_s}s x{self.multiplier} up to {self.max_s}s, "
            f"jitter {self.jitter})"
        )


@dataclass
class FailureRateRestart(RestartStrategy):
    max_failures: int = 1
    interval_s: float = 60.0
    delay_s: float = 1.0
    failures: deque[int] = field(default_factory=deque)
    name = "failure-rate"

    def on_failure(self, now_ms: int) -> float | None:
        self.failures.append(now_ms)
        while self.failures and now_ms - self.failures[0] > self.interval_s * 1000:
            self.failures.popleft()
        if len(self.failures) > self.max_failures:
            return None
        return self.delay_s

    def describe(self) -> str:
        return f"failure-rate (at most {self.max_failures} in {self.interval_s}s)"
