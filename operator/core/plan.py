"""What a planner returns, and what it is given: the plan of one reconcile cycle, as data.

:class:`PlanInput` is (spec, recorded bookkeeping, observation, settings); :class:`Plan` is the
new bookkeeping, what the operator is in the middle of (:class:`Operation`, shown as
``status.reconciliation.state``), the actions for the shell (:mod:`.actions`: at most one
destructive) and when to look again. :func:`.planner.plan` computes it; the flows it delegates
to live in :mod:`.changes`, :mod:`.maintenance`, :mod:`.scaling`, :mod:`.savepoints`,
:mod:`.upgrades` and :mod:`.teardown`. Pure.
"""

from __future__ import annotations

import dataclasses
import enum

from streamjob.operator.core import actions, model, observation

#: how soon to look again while something is in progress
BUSY_REQUEUE_S = 1.0


class Operation(enum.StrEnum):
    """``status.reconciliation.state``: what the operator is in the middle of."""

    DEPLOYED = "DEPLOYED"
    UPGRADING = "UPGRADING"
    RESCALING = "RESCALING"
    SAVEPOINTING = "SAVEPOINTING"
    SUSPENDED = "SUSPENDED"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanSettings:
    rescale_cooldown_s: float = 30.0
    savepoint_timeout_s: float = 600.0
    savepoint_retry_s: float = 30.0
    rescale_retry_s: float = 60.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanInput:
    #: the current spec, None when it does not validate (the reconciled one is kept running)
    spec: model.StreamJobSpec | None
    recorded: observation.Recorded
    obs: observation.Observation
    settings: PlanSettings = dataclasses.field(default_factory=PlanSettings)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    recorded: observation.Recorded
    operation: Operation | None
    actions: tuple[actions.Action, ...] = ()
    message: str = ""
    #: a problem the user should see (a failed savepoint, a fallback taken)
    warning: str | None = None
    requeue_s: float | None = None

    def __post_init__(self) -> None:
        if actions.destructive_count(self.actions) > 1:
            raise ValueError(f"a plan may hold one destructive action: {self.actions}")
