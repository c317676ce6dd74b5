"""``Duration``: a span of time in whole milliseconds, with Flink's constructors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    """A non-negative span of time in milliseconds (``Duration.of_seconds(10)``)."""

    millis: int

    def __post_init__(self) -> None:
        if not isinstance(self.millis, int) or isinstance(self.millis, bool):
            raise TypeError(f"Duration takes whole milliseconds, got {self.millis!r}")
        if self.millis < 0:
            raise ValueError(f"Duration cannot be negative, got {self.millis} ms")

    @staticmethod
    def of_millis(millis: int) -> Duration:
        return Duration(millis)

    @staticmethod
    def of_seconds(seconds: int | float) -> Duration:
        return Duration(round(seconds * 1000))

    @staticmethod
    def of_minutes(minutes: int | float) -> Duration:
        return Duration(round(minutes * 60_000))

    @staticmethod
    def of_hours(hours: int | float) -> Duration:
        return Duration(round(hours * 3_600_000))

    @staticmethod
    def of_days(days: int | float) -> Duration:
        return Duration(round(days * 86_400_000))

    @staticmethod
    def zero() -> Duration:
        return Duration(0)

    def to_millis(self) -> int:
        return self.millis

    def to_seconds(self) -> float:
        return self.millis / 1000.0

    def __str__(self) -> str:
        return f"{self.millis} ms"
