"""Flink's job states (DESIGN.md section 7), shared by the job master and the REST shapes."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FAILING = "FAILING"
    RESTARTING = "RESTARTING"
    CANCELLING = "CANCELLING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    SUSPENDED = "SUSPENDED"

    @property
    def terminal(self) -> bool:
        return self in (JobState.CANCELED, JobState.FINISHED, JobState.FAILED)
