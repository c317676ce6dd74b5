"""What travels through a channel, in order: record batches and in-band control events.

Records move in batches (DESIGN.md section 4): a :class:`Batch` holds plain record values with
optional parallel lists of timestamps, keys and key groups, so nothing is wrapped per record.
Barriers, watermarks, watermark status and end-of-partition travel in the same channels, so a
task sees them in order with the records around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MIN_WATERMARK = -(1 << 63)
MAX_WATERMARK = (1 << 63) - 1


class Batch:
    """A batch of records. ``timestamps``, ``keys`` and ``key_groups`` are parallel or None.

    ``keys``/``key_groups`` are filled by a key-group partitioner and consumed by the keyed
    operator behind it, which therefore never recomputes them.
    """

    __slots__ = ("key_groups", "keys", "records", "timestamps")

    def __init__(
        self,
        records: list[Any],
        timestamps: list[int] | None = None,
        keys: list[Any] | None = None,
        key_groups: list[int] | None = None,
    ) -> None:
        self.records = records
        self.timestamps = timestamps
        self.keys = keys
        self.key_groups = key_groups

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"Batch({len(self.records)} records)"


@dataclass(frozen=True, slots=True)
class Watermark:
    """Event time has reached ``timestamp``: no record with a smaller timestamp follows."""

    timestamp: int


@dataclass(frozen=True, slots=True)
class WatermarkStatus:
    """An input became idle (excluded from the watermark minimum) or active again."""

    idle: bool


class CheckpointKind(StrEnum):
    CHECKPOINT = "checkpoint"
    SAVEPOINT = "savepoint"


@dataclass(frozen=True, slots=True)
class CheckpointOptions:
    kind: CheckpointKind = CheckpointKind.CHECKPOINT
    aligned: bool = True
    target: str | None = None
    stop: bool = False
    drain: bool = False


@dataclass(frozen=True, slots=True)
class CheckpointBarrier:
    """Barrier ``checkpoint_id``: everything before it belongs to the checkpoint."""

    checkpoint_id: int
    timestamp: int
    options: CheckpointOptions = field(default_factory=CheckpointOptions)


@dataclass(frozen=True, slots=True)
class EndOfData:
    """The upstream subtask has no more records (it may still take part in checkpoints)."""


@dataclass(frozen=True, slots=True)
class EndOfPartition:
    """The upstream subtask has finished; nothing follows on this channel."""


END_OF_DATA = EndOfData()
END_OF_PARTITION = EndOfPartition()

ControlEvent = Watermark | WatermarkStatus | CheckpointBarrier | EndOfData | EndOfPartition
ChannelItem = Batch | ControlEvent
