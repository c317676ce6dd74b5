"""The actions a plan asks the shell to take, as frozen data.

A :class:`.plan.Plan` holds them, :mod:`streamjob.operator.act` carries them out in order. An
action is *destructive* when it stops work that is running (deleting a live pod, stopping or
rescaling the job): a plan holds at most one of those, and only when its precondition is already
visible in what the cycle observed. Removing a pod whose process already ended is not
destructive: it is the first half of replacing it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from streamjob.operator.core import observation


@dataclasses.dataclass(frozen=True, kw_only=True)
class Action:
    @property
    def destructive(self) -> bool:
        return False

    def describe(self) -> str:
        return type(self).__name__


@dataclasses.dataclass(frozen=True, kw_only=True)
class ApplyConfigMap(Action):
    manifest: Mapping[str, Any]

    def describe(self) -> str:
        return f"apply ConfigMap {self.manifest['metadata']['name']}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CreateService(Action):
    manifest: Mapping[str, Any]

    def describe(self) -> str:
        return f"create Service {self.manifest['metadata']['name']}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CreatePod(Action):
    manifest: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    def describe(self) -> str:
        return f"create Pod {self.name}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RemoveTerminatedPods(Action):
    """Delete pods whose process already ended, so replacements can take their names."""

    pods: tuple[tuple[str, str], ...]  # (name, uid): the uid is a delete precondition

    def describe(self) -> str:
        return f"remove terminated pods {', '.join(n for n, _ in self.pods)}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeletePods(Action):
    """Delete live pods (an upgrade's teardown, a suspend, the surplus of a scale down)."""

    pods: tuple[tuple[str, str], ...]
    reason: str

    @property
    def destructive(self) -> bool:
        return True

    def describe(self) -> str:
        return f"delete pods {', '.join(n for n, _ in self.pods)} ({self.reason})"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReportFailedTaskManager(Action):
    """``POST /taskmanagers/{pod_uid}/failed``: failover starts without waiting for heartbeats."""

    pod_name: str
    pod_uid: str

    def describe(self) -> str:
        return f"report TaskManager {self.pod_name} ({self.pod_uid}) failed"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TriggerSavepoint(Action):
    job_id: str
    target_dir: str
    reason: observation.SavepointReason
    #: stop-with-savepoint: the job ends with the savepoint
    stop: bool

    @property
    def destructive(self) -> bool:
        return self.stop

    def describe(self) -> str:
        verb = "stop with savepoint" if self.stop else "trigger savepoint"
        return f"{verb} of job {self.job_id} to {self.target_dir} ({self.reason.value.lower()})"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rescale(Action):
    job_id: str
    parallelism: int
    scale_down: bool

    @property
    def destructive(self) -> bool:
        return self.scale_down

    def describe(self) -> str:
        return f"rescale job {self.job_id} to parallelism {self.parallelism}"


def destructive_count(actions: tuple[Action, ...]) -> int:
    return sum(1 for a in actions if a.destructive)
