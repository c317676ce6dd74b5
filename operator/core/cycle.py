"""One reconcile cycle's decisions, without its I/O: read -> (observe) -> validate, plan, status.

:func:`read` parses what the StreamJob says (its spec, or the problem with it, and the recorded
bookkeeping); the shell then observes; :func:`decide` validates, plans and computes the new
status, the one merge patch and the transition Events. The reconciler and the tests' simulated
cluster both run exactly this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from streamjob.operator.core import model, observation, plan, planner, status, validate
from streamjob.operator.core.status import Event


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reading:
    name: str
    spec: model.StreamJobSpec | None
    #: why the spec could not be parsed
    problem: validate.Problem | None
    recorded: observation.Recorded
    status: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Decision:
    problems: tuple[validate.Problem, ...]
    plan: plan.Plan
    status: dict[str, Any]
    patch: dict[str, Any]
    events: tuple[Event, ...]


def read(body: Mapping[str, Any]) -> Reading:
    parsed = validate.parse(body.get("spec") or {})
    before = body.get("status") or {}
    return Reading(
        name=body["metadata"]["name"],
        spec=parsed if isinstance(parsed, model.StreamJobSpec) else None,
        problem=parsed if isinstance(parsed, validate.Problem) else None,
        recorded=status.recorded_from_status(before),
        status=before,
    )


def decide(
    reading: Reading,
    obs: observation.Observation,
    *,
    settings: plan.PlanSettings,
    action_error: str | None = None,
) -> Decision:
    if reading.spec is None:
        assert reading.problem is not None
        problems: tuple[validate.Problem, ...] = (reading.problem,)
    else:
        problems = tuple(
            validate.problems(
                reading.spec, name=reading.name, recorded=reading.recorded, secret=obs.secret
            )
        )
    planned = planner.plan(
        plan.PlanInput(
            spec=None if problems else reading.spec,
            recorded=reading.recorded,
            obs=obs,
            settings=settings,
        )
    )
    after = status.build_status(
        status.StatusInput(
            prior=reading.status,
            obs=obs,
            plan=planned,
            problems=problems,
            action_error=action_error,
        )
    )
    return Decision(
        problems=problems,
        plan=planned,
        status=after,
        patch=status.merge_patch(reading.status, after),
        events=tuple(status.transition_events(reading.status, after)),
    )
