"""Choosing the restart strategy: Flink's default is exponential delay with checkpointing."""

from __future__ import annotations

from streamjob.checkpoint.restart import (
    ExponentialDelayRestart,
    FailureRateRestart,
    FixedDelayRestart,
    NoRestart,
    RestartStrategy,
)

__all__ = [
    "ExponentialDelayRestart",
    "FailureRateRestart",
    "FixedDelayRestart",
    "NoRestart",
    "RestartStrategy",
    "default_restart_strategy",
    "parse_restart_strategy",
]


def default_restart_strategy(*, checkpointing: bool) -> RestartStrategy:
    """Without checkpointing a restart would replay from scratch: Flink does not restart."""
    return ExponentialDelayRestart() if checkpointing else NoRestart()


def parse_restart_strategy(text: str) -> RestartStrategy:
    """``none``, ``fixed-delay:ATTEMPTS:DELAY_S``, ``exponential-delay[:MAX_ATTEMPTS]``,
    ``failure-rate:MAX_FAILURES:INTERVAL_S:DELAY_S``."""
    name, *args = text.split(":")
    try:
        if name == "none":
            return NoRestart()
        if name == "fixed-delay":
            return FixedDelayRestart(
                int(args[0]) if args else 3, float(args[1]) if len(args) > 1 else 1.0
            )
        if name == "exponential-delay":
            return ExponentialDelayRestart(max_attempts=int(args[0]) if args else None)
        if name == "failure-rate":
            return FailureRateRestart(
                int(args[0]) if args else 1,
                float(args[1]) if len(args) > 1 else 60.0,
                float(args[2]) if len(args) > 2 else 1.0,
            )
    except (ValueError, IndexError) as exc:
        raise ValueError(f"bad restart strategy {text!r}: {exc}") from exc
    raise ValueError(
        f"unknown restart strategy {text!r}: use none, fixed-delay:N:S, exponential-delay, "
        "or failure-rate:N:INTERVAL:DELAY"
    )
