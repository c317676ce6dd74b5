"""Status: the one merge patch per cycle, its bookkeeping read back, conditions and Events.

Aspects covered: merge patches remove what disappeared; the bookkeeping survives a round trip
through status (what a restarted operator reads); a condition keeps its lastTransitionTime while
unchanged; transition Events; every status the planner flows produced is valid against the CRD
and loses nothing to pruning (checked in the simulation on every cycle), while unknown fields
would be pruned.
"""

from __future__ import annotations

import datetime

from streamjob.operator.core import status
from streamjob.operator.core.observation import (
    RescalePhase,
    RescaleRecord,
    SavepointReason,
    SavepointRecord,
    SavepointState,
)
from tests.operator import schema
from tests.operator.simulation import NOW, World, spec_dict


def test_merge_patch_sets_changes_and_removes_what_disappeared() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    new = {"a": 1, "b": {"c": 5, "d": None}, "e": [1, 2], "f": None}
    assert status.merge_patch(old, new) == {"b": {"c": 5, "d": None}, "e": [1, 2]}
    assert schema.apply_merge_patch(old, status.merge_patch(old, new)) == {
        "a": 1,
        "b": {"c": 5},
        "e": [1, 2],
    }


def test_bookkeeping_round_trips_through_status() -> None:
    sp = SavepointRecord(
        reason=SavepointReason.UPGRADE,
        state=SavepointState.IN_PROGRESS,
        stop=True,
        trigger_time=NOW,
        trigger_id="t1",
    )
    rs = RescaleRecord(source=2, target=3, phase=RescalePhase.PODS, start_time=NOW)
    raw = {
        "jobStatus": {"restoreGeneration": 3, "jobId": "abc", "maxParallelism": 64},
        "upgradeSavepointPath": "s3://b1/sp",
        "savepoint": status.savepoint_dict(sp),
        "reconciliation": {
            "lastReconciledSpec": '{"image": "x"}',
            "rescale": {"from": 2, "to": 3, "phase": "PODS", "startTime": status.iso(NOW)},
            "lastRescaleTime": status.iso(NOW),
        },
    }
    rec = status.recorded_from_status(raw)
    assert rec.restore_generation == 3 and rec.max_parallelism == 64
    assert rec.savepoint == sp and rec.rescale == rs
    assert rec.last_rescale_time == NOW
    assert rec.reconciled_raw == {"image": "x"}
    assert schema.admit_status(raw)[1] == []


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    world = World(spec=spec_dict())
    world.settle()
    valid = next(c for c in world.status["conditions"] if c["type"] == "Valid")
    since = valid["lastTransitionTime"]
    world.tick(100)
    world.cycle()
    again = next(c for c in world.status["conditions"] if c["type"] == "Valid")
    assert again["lastTransitionTime"] == since


def test_status_reports_observed_generation_and_the_last_checkpoint() -> None:
    world = World(spec=spec_dict())
    world.settle()
    world.checkpoint()
    world.cycle()
    assert world.status["observedGeneration"] == 1
    assert world.status["lastCheckpoint"]["id"] == 1
    assert world.status["lastCheckpoint"]["time"].endswith("Z")


def test_unknown_status_fields_are_pruned_as_an_api_server_would() -> None:
    stored, errors = schema.admit_status(
        {"lifecycleState": "STABLE", "kopf": {"progress": {}}, "jobStatus": {"bogus": 1}}
    )
    assert errors == []
    assert stored == {"lifecycleState": "STABLE", "jobStatus": {}}


def test_status_schema_rejects_what_the_crd_forbids() -> None:
    _, errors = schema.admit_status({"lifecycleState": "DANCING", "taskManagers": {"ready": -1}})
    assert any("DANCING" in e for e in errors) and any("minimum" in e for e in errors)


def test_transition_events() -> None:
    old = {"lifecycleState": "DEPLOYED", "jobStatus": {"state": "RUNNING", "jobId": "j1"}}
    new = {
        "lifecycleState": "FAILED",
        "jobStatus": {"state": "FAILED", "jobId": "j1"},
        "savepoint": {
            "reason": "MANUAL",
            "state": "COMPLETED",
            "location": "s3://b1/sp",
            "triggerTime": status.iso(NOW),
        },
    }
    events = status.transition_events(old, new)
    assert [(e.type, e.reason) for e in events] == [
        ("Warning", "Failed"),
        ("Warning", "JobState"),
        ("Normal", "SavepointCompleted"),
    ]
    assert "s3://b1/sp" in events[-1].message
    assert status.transition_events(new, new) == []


def test_times_are_rfc3339_utc() -> None:
    when = datetime.datetime(
        2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert status.iso(when) == "2025-01-02T01:04:05Z"
    assert status.parse_time("2025-01-02T01:04:05Z") == when
