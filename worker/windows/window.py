"""Windows as the user sees them (``TimeWindow``, ``GlobalWindow``) and as the runtime keeps them.

Inside the operators a window is a plain ``(start, end)`` tuple of ints: it is the state
namespace and the timer namespace, hashed by C code, never a Python ``__hash__``. The
global window is ``(MIN_WATERMARK, MAX_WATERMARK + 1)`` so that ``end - 1`` is its maximum
timestamp like every other window. :func:`to_window` makes the user-facing object on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamjob.runtime.events import MAX_WATERMARK, MIN_WATERMARK

WindowTuple = tuple[int, int]
GLOBAL_WINDOW: WindowTuple = (MIN_WATERMARK, MAX_WATERMARK + 1)


class Window:
    """Base of windows: a maximum timestamp (the last instant that belongs to it)."""

    __slots__ = ()

    def max_timestamp(self) -> int:
        raise NotImplementedError


@dataclass(frozen=True, slots=True, order=True)
class TimeWindow(Window):
    """The half-open interval ``[start, end)`` of milliseconds."""

    start: int
    end: int

    def max_timestamp(self) -> int:
        return self.end - 1

    def intersects(self, other: TimeWindow) -> bool:
        """Overlapping or touching (Flink's rule, so sessions ``[0,5)`` and ``[5,9)`` merge)."""
        return self.start <= other.end and self.end >= other.start

    def cover(self, other: TimeWindow) -> TimeWindow:
        return TimeWindow(min(self.start, other.start), max(self.end, other.end))

    @staticmethod
    def get_window_start_with_offset(timestamp: int, offset: int, window_size: int) -> int:
        """Start of the aligned window of ``window_size`` containing ``timestamp``."""
        return timestamp - (timestamp - offset) % window_size

    def __repr__(self) -> str:
        return f"TimeWindow(start={self.start}, end={self.end})"


@dataclass(frozen=True, slots=True)
class GlobalWindow(Window):
    """The single window of ``GlobalWindows``; use :meth:`get` (there is one)."""

    def max_timestamp(self) -> int:
        return MAX_WATERMARK

    @staticmethod
    def get() -> GlobalWindow:
        return _THE_GLOBAL_WINDOW

    def __repr__(self) -> str:
        return "GlobalWindow"


_THE_GLOBAL_WINDOW = GlobalWindow()


def to_window(window: WindowTuple) -> Window:
    """The user-facing window of an internal ``(start, end)`` tuple."""
    if window == GLOBAL_WINDOW:
        return _THE_GLOBAL_WINDOW
    return TimeWindow(window[0], window[1])


def to_tuple(window: Window) -> WindowTuple:
    """The internal tuple of a user-facing window (custom assigners return objects)."""
    if isinstance(window, TimeWindow):
        return (window.start, window.end)
    if isinstance(window, GlobalWindow):
        return GLOBAL_WINDOW
    raise TypeError(
        f"a window assigner returned {window!r}; windows are TimeWindow or GlobalWindow"
    )
