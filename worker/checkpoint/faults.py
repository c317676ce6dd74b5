"""Named fault points for tests (DESIGN.md section 10): inject a failure exactly there.

Production code calls ``faults.hit("mid_upload", ...)``; it does nothing unless a test armed
that point. Points: ``after_snapshot`` (snapshot taken, barrier forwarded, before upload),
``mid_upload``, ``before_ack`` (uploaded, before acknowledgement), ``after_metadata``
(``_metadata`` written, before notification), ``during_notify``, ``during_restore``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

POINTS = (
    "after_snapshot",
    "mid_upload",
    "before_ack",
    "after_metadata",
    "during_notify",
    "during_restore",
)


class InjectedFault(Exception):
    """The failure a test asked for."""


@dataclass
class _Arm:
    point: str
    when: Callable[[dict[str, Any]], bool]
    times: int


@dataclass
class FaultInjector:
    arms: list[_Arm] = field(default_factory=list)
    fired: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    observers: list[tuple[str, Callable[[dict[str, Any]], None]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, point: str, observer: Callable[[dict[str, Any]], None]) -> None:
        """Call ``observer(context)`` every time ``point`` is reached (tests use this to wait
        for progress, e.g. for completed checkpoints, before they crash a job)."""
        if point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
        self.observers.append((point, observer))

    def arm(
        self,
        point: str,
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
        times: int = 1,
    ) -> None:
        if point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
        self.arms.append(_Arm(point, when or (lambda _: True), times))

    def hit(self, point: str, **context: Any) -> None:
        for name, observer in self.observers:
            if name == point:
                observer(context)
        if not self.arms:
            return
        with self._lock:
            for arm in self.arms:
                if arm.point == point and arm.times > 0 and arm.when(context):
                    arm.times -= 1
                    self.fired.append((point, context))
                    raise InjectedFault(f"injected fault at {point} {context}")
