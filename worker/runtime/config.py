"""Execution settings shared by the local executor and (later) the cluster runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamjob.clock import SYSTEM_CLOCK, Clock
from streamjob.runtime.channels import DEFAULT_CREDITS
from streamjob.runtime.task import DEFAULT_LINGER_S
from streamjob.runtime.writer import DEFAULT_BATCH_SIZE


@dataclass
class ExecutionConfig:
    batch_size: int = DEFAULT_BATCH_SIZE
    credits: int = DEFAULT_CREDITS
    linger_s: float = DEFAULT_LINGER_S
    auto_watermark_interval_ms: int = 200
    state_backend: str = "hashmap"
    clock: Clock = SYSTEM_CLOCK
    attempt: int = 0
    job_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.credits < 1:
            raise ValueError(f"credits must be >= 1, got {self.credits}")
