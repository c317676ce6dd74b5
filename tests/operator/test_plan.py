"""The planner, run cycle by cycle against a simulated cluster (no kopf, no sockets, no clock).

Aspects covered:
- creation: ConfigMap, Service, JobManager and TaskManager pods, then STABLE;
- failures: a failed or vanished TaskManager is replaced and its uid reported; a failed
  JobManager is replaced and the job resumes from its latest checkpoint under the same job id;
- rescale: scale up creates pods first and rescales once they are ready; scale down rescales
  first and deletes the highest ordinals once the job runs at the new parallelism; a cooldown
  between rescales; a new target coalesced into a scale up in flight;
- upgrades by mode (last-state, stateless, savepoint, and the fallback when the job is not
  running), ``restartNonce``, an explicit restore through ``initialSavepointPath``;
- suspend and resume; ``savepointTriggerNonce``; a failed savepoint and its retry delay;
- lineage: job id from (uid, restore generation), max parallelism adopted from the first run,
  kept across an operator restart;
- invariants on every plan: at most one destructive action; statuses valid and unpruned.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob.jobmanager import dto
from streamjob.operator.core import actions, names, observation, plan
from tests.operator.simulation import UID, World, spec_dict


@pytest.fixture
def world() -> World:
    return World(spec=spec_dict())


def deployed(world: World) -> World:
    world.settle()
    assert world.status["lifecycleState"] == "STABLE"
    return world


def kinds(p: plan.Plan) -> list[str]:
    return [type(a).__name__ for a in p.actions]


def set_job(**fields: Any) -> Any:
    def change(spec: dict[str, Any]) -> None:
        spec["job"].update(fields)

    return change


# -- creation ------------------------------------------------------------------------------------
def test_creation_makes_config_map_service_jobmanager_and_taskmanagers(world: World) -> None:
    first = world.cycle()
    assert kinds(first.plan) == [
        "ApplyConfigMap",
        "CreateService",
        "CreatePod",
        "CreatePod",
        "CreatePod",
    ]
    assert sorted(world.pods) == [
        "wordcount-jobmanager",
        "wordcount-taskmanager-0",
        "wordcount-taskmanager-1",
    ]
    assert first.status["jobStatus"]["jobId"] == names.job_id(UID, 0)
    assert first.status["lifecycleState"] == "DEPLOYED"
    world.settle()
    assert world.status["lifecycleState"] == "STABLE"
    assert world.status["jobStatus"]["state"] == "RUNNING"
    assert world.status["jobStatus"]["maxParallelism"] == 128  # adopted from the first run
    assert world.status["taskManagers"] == {
        "replicas": 2,
        "ready": 2,
        "labelSelector": "streamjob.io/job=wordcount,streamjob.io/role=taskmanager",
    }
    ready = next(c for c in world.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert {"Deployed", "Stable", "JobState"} <= set(world.event_reasons())


def test_created_suspended_makes_no_pods() -> None:
    world = World(spec=spec_dict(state="suspended"))
    world.settle()
    assert world.pods == {}
    assert world.status["lifecycleState"] == "SUSPENDED"


# -- failures ------------------------------------------------------------------------------------
def test_failed_taskmanager_is_replaced_and_reported(world: World) -> None:
    deployed(world)
    old = world.fail_pod("wordcount-taskmanager-1")
    decision = world.cycle()
    assert kinds(decision.plan) == ["ReportFailedTaskManager", "RemoveTerminatedPods", "CreatePod"]
    assert world.reports == [old]
    assert world.pods["wordcount-taskmanager-1"]["uid"] != old
    assert "PodReplaced" not in world.event_reasons()  # posted by the shell's act step
    assert actions.destructive_count(decision.plan.actions) == 0


def test_vanished_taskmanager_is_reported_and_recreated(world: World) -> None:
    deployed(world)
    gone = world.pods.pop("wordcount-taskmanager-0")["uid"]
    decision = world.cycle()
    assert world.reports == [gone]
    assert "wordcount-taskmanager-0" in world.pods
    assert kinds(decision.plan) == ["ReportFailedTaskManager", "CreatePod"]


def test_failed_jobmanager_is_replaced_and_resumes_from_the_latest_checkpoint(
    world: World,
) -> None:
    deployed(world)
    job_id = world.status["jobStatus"]["jobId"]
    world.checkpoint()
    world.checkpoint()
    world.fail_pod("wordcount-jobmanager")
    world.jobs.clear()  # its process died
    world.cycle()
    world.settle()
    assert world.reports == []  # a JobManager is not reported to itself
    assert world.status["jobStatus"]["jobId"] == job_id
    assert world.job.restored_from == f"{job_id}/chk-2"


def test_jobmanager_down_is_observed_not_an_error(world: World) -> None:
    deployed(world)
    world.jobmanager_up = False
    decision = world.cycle()
    assert decision.plan.actions == ()
    assert world.status["jobStatus"]["state"] == "UNKNOWN"
    assert world.status["lifecycleState"] == "DEPLOYED"


# -- rescaling -----------------------------------------------------------------------------------
def test_scale_up_creates_pods_first_then_rescales(world: World) -> None:
    deployed(world)
    world.pods_become_ready = False
    world.edit(set_job(parallelism=3))
    first = world.cycle()
    assert kinds(first.plan) == ["CreatePod"]
    assert first.plan.actions[0].manifest["metadata"]["name"] == "wordcount-taskmanager-2"
    assert world.status["reconciliation"]["rescale"]["phase"] == "PODS"
    assert world.job.parallelism == 2
    waiting = world.cycle()  # the new pod is not ready: no rescale yet
    assert waiting.plan.actions == ()
    world.pods["wordcount-taskmanager-2"]["ready"] = True
    ask = world.cycle()
    assert kinds(ask.plan) == ["Rescale"]
    assert world.job.parallelism == 3
    world.settle()
    assert world.status["reconciliation"].get("rescale") is None
    assert world.status["jobStatus"]["parallelism"] == 3
    assert {"RescaleStarted", "RescaleRequested", "Rescaled"} <= set(world.event_reasons())


def test_scale_down_rescales_first_then_deletes_the_highest_ordinals() -> None:
    world = deployed(World(spec=spec_dict(parallelism=3)))
    world.edit(set_job(parallelism=1))
    first = world.cycle()
    assert kinds(first.plan) == ["Rescale"]
    assert first.plan.actions[0].destructive
    assert len(world.taskmanagers()) == 3  # nothing deleted before the job runs at 1
    second = world.cycle()
    deletes = [a for a in second.plan.actions if isinstance(a, actions.DeletePods)]
    assert [n for n, _ in deletes[0].pods] == ["wordcount-taskmanager-1", "wordcount-taskmanager-2"]
    assert world.taskmanagers() == ["wordcount-taskmanager-0"]


def test_scale_down_waits_while_the_job_still_runs_on_the_pods() -> None:
    world = deployed(World(spec=spec_dict(parallelism=3)))
    world.edit(set_job(parallelism=1))
    world.cycle()
    world.job.parallelism = 3  # the JobManager has not rescaled yet
    world.job.state = dto.JobState.RESTARTING
    decision = world.cycle()
    assert not any(isinstance(a, actions.DeletePods) for a in decision.plan.actions)
    assert len(world.taskmanagers()) == 3


def test_rescales_keep_a_cooldown(world: World) -> None:
    deployed(world)
    world.edit(set_job(parallelism=3))
    world.settle()
    world.edit(set_job(parallelism=4))
    decision = world.cycle()
    assert decision.plan.actions == ()
    assert "cooldown" in decision.plan.message
    world.tick(31)
    assert kinds(world.cycle().plan) == ["CreatePod"]


def test_a_new_target_is_coalesced_into_a_scale_up_in_flight(world: World) -> None:
    deployed(world)
    world.pods_become_ready = False
    world.edit(set_job(parallelism=3))
    world.cycle()
    world.edit(set_job(parallelism=5))
    decision = world.cycle()
    assert [a.manifest["metadata"]["name"] for a in decision.plan.actions] == [
        "wordcount-taskmanager-3",
        "wordcount-taskmanager-4",
    ]
    for pod in world.pods.values():
        pod["ready"] = True
    world.settle()
    rescales = [a for p in world.plans for a in p.actions if isinstance(a, actions.Rescale)]
    assert [a.parallelism for a in rescales] == [5]


def test_a_scale_up_withdrawn_before_the_rescale_removes_its_pods(world: World) -> None:
    deployed(world)
    world.pods_become_ready = False
    world.edit(set_job(parallelism=3))
    world.cycle()
    world.edit(set_job(parallelism=2))
    world.settle()
    assert world.taskmanagers() == ["wordcount-taskmanager-0", "wordcount-taskmanager-1"]
    assert not any(isinstance(a, actions.Rescale) for p in world.plans for a in p.actions)


# -- upgrades ------------------------------------------------------------------------------------
def test_last_state_upgrade_keeps_the_job_id_and_restores_the_latest_checkpoint(
    world: World,
) -> None:
    deployed(world)
    job_id = world.status["jobStatus"]["jobId"]
    world.checkpoint()
    world.edit(lambda s: s.update(image="registry.local/streamjob:2"))
    teardown = world.cycle()
    assert kinds(teardown.plan) == ["DeletePods"]
    assert world.status["lifecycleState"] == "UPGRADING"
    world.settle()
    assert world.status["jobStatus"]["jobId"] == job_id
    assert world.job.restored_from == f"{job_id}/chk-1"
    jm = world.pods["wordcount-jobmanager"]["manifest"]
    assert jm["spec"]["containers"][0]["image"] == "registry.local/streamjob:2"


def test_stateless_upgrade_starts_a_new_lineage_with_empty_state() -> None:
    world = deployed(World(spec=spec_dict(upgradeMode="stateless")))
    old_id = world.status["jobStatus"]["jobId"]
    world.checkpoint()
    world.edit(set_job(entrypoint="jobs.wordcount:build_v2"))
    world.settle()
    assert world.status["jobStatus"]["restoreGeneration"] == 1
    assert world.status["jobStatus"]["jobId"] == names.job_id(UID, 1) != old_id
    assert world.job.restored_from is None
    assert "JobIdChanged" in world.event_reasons()


def test_savepoint_upgrade_stops_with_a_savepoint_then_restores_it_under_a_new_job_id() -> None:
    world = deployed(World(spec=spec_dict(upgradeMode="savepoint")))
    old_id = world.status["jobStatus"]["jobId"]
    world.edit(lambda s: s.update(image="registry.local/streamjob:2"))
    trigger = world.cycle()
    assert kinds(trigger.plan) == ["TriggerSavepoint"]
    assert trigger.plan.actions[0].stop
    assert world.pods  # nothing deleted before the savepoint completed
    world.settle()
    location = f"s3://checkpoints/wordcount/savepoints/savepoint-{old_id}-1"
    assert world.status["upgradeSavepointPath"] == location
    assert world.status["jobStatus"]["jobId"] == names.job_id(UID, 1)
    assert world.job.restored_from == location
    assert world.status["savepoint"]["state"] == "COMPLETED"
    assert {"SavepointTriggered", "SavepointCompleted", "JobIdChanged"} <= set(
        world.event_reasons()
    )


def test_savepoint_upgrade_of_a_job_not_running_falls_back_to_last_state() -> None:
    world = deployed(World(spec=spec_dict(upgradeMode="savepoint")))
    job_id = world.status["jobStatus"]["jobId"]
    world.job.state = dto.JobState.FAILED
    world.edit(lambda s: s.update(image="registry.local/streamjob:2"))
    decision = world.cycle()
    assert kinds(decision.plan) == ["DeletePods"]
    assert "last-state" in (decision.plan.warning or "")
    assert world.status["jobStatus"]["jobId"] == job_id


def test_restart_nonce_restarts_the_pods(world: World) -> None:
    deployed(world)
    before = {n: p["uid"] for n, p in world.pods.items()}
    world.edit(lambda s: s.update(restartNonce=1))
    world.settle()
    after = {n: p["uid"] for n, p in world.pods.items()}
    assert before.keys() == after.keys()
    assert not set(before.values()) & set(after.values())


def test_a_new_initial_savepoint_path_is_an_explicit_restore(world: World) -> None:
    deployed(world)
    world.edit(set_job(initialSavepointPath="s3://checkpoints/old/savepoint-x-7"))
    world.settle()
    assert world.status["jobStatus"]["restoreGeneration"] == 1
    assert world.job.restored_from == "s3://checkpoints/old/savepoint-x-7"


def test_an_initial_savepoint_is_passed_to_the_first_jobmanager() -> None:
    world = World(spec=spec_dict(initialSavepointPath="s3://b1/sp/savepoint-a-3"))
    world.settle()
    assert world.job.restored_from == "s3://b1/sp/savepoint-a-3"


# -- suspend and resume --------------------------------------------------------------------------
def test_last_state_suspend_and_resume_keep_the_lineage(world: World) -> None:
    deployed(world)
    job_id = world.status["jobStatus"]["jobId"]
    world.checkpoint()
    world.edit(set_job(state="suspended"))
    decision = world.cycle()
    assert kinds(decision.plan) == ["DeletePods"]
    world.settle()
    assert world.pods == {}
    assert world.status["lifecycleState"] == "SUSPENDED"
    world.edit(set_job(state="running"))
    world.settle()
    assert world.status["jobStatus"]["jobId"] == job_id
    assert world.job.restored_from == f"{job_id}/chk-1"


def test_savepoint_suspend_and_resume_restore_the_savepoint() -> None:
    world = deployed(World(spec=spec_dict(upgradeMode="savepoint")))
    world.edit(set_job(state="suspended"))
    assert kinds(world.cycle().plan) == ["TriggerSavepoint"]
    world.settle()
    assert world.pods == {}
    path = world.status["upgradeSavepointPath"]
    world.edit(set_job(state="running"))
    world.settle()
    assert world.job.restored_from == path
    assert world.status["jobStatus"]["restoreGeneration"] == 1


# -- savepoints ----------------------------------------------------------------------------------
def test_savepoint_nonce_takes_one_savepoint(world: World) -> None:
    deployed(world)
    world.edit(lambda s: s.update(savepointTriggerNonce=7))
    trigger = world.cycle()
    assert kinds(trigger.plan) == ["TriggerSavepoint"]
    assert not trigger.plan.actions[0].stop
    world.settle()
    assert world.status["savepoint"]["state"] == "COMPLETED"
    assert world.status["savepoint"]["triggerNonce"] == 7
    assert world.status["lastSavepoint"]["path"].endswith("-1")
    world.run(3)
    triggers = [
        a for p in world.plans for a in p.actions if isinstance(a, actions.TriggerSavepoint)
    ]
    assert len(triggers) == 1
    assert world.job.state is dto.JobState.RUNNING


def test_a_failed_upgrade_savepoint_is_retried_after_a_delay() -> None:
    world = deployed(World(spec=spec_dict(upgradeMode="savepoint")))
    world.complete_savepoints = False
    world.edit(lambda s: s.update(image="registry.local/streamjob:2"))
    world.cycle()
    trigger = world.status["savepoint"]["triggerId"]
    world.savepoints[trigger] = dto.SavepointStatus(
        trigger_id=trigger, status=dto.OperationStatus.FAILED, failure_cause="disk full"
    )
    world.cycle()
    assert world.status["savepoint"]["state"] == "FAILED"
    assert "disk full" in world.status["error"]
    assert "SavepointFailed" in world.event_reasons()
    assert world.cycle().plan.actions == ()  # within the retry delay
    world.tick(31)
    assert kinds(world.cycle().plan) == ["TriggerSavepoint"]


def test_a_savepoint_that_never_completes_times_out() -> None:
    world = deployed(World(spec=spec_dict()))
    world.complete_savepoints = False
    world.edit(lambda s: s.update(savepointTriggerNonce=1))
    world.cycle()
    world.tick(601)
    world.cycle()
    assert world.status["savepoint"]["state"] == "FAILED"
    assert "not completed" in world.status["savepoint"]["error"]


# -- lineage -------------------------------------------------------------------------------------
def test_an_operator_restart_keeps_the_lineage(world: World) -> None:
    deployed(world)
    world.edit(lambda s: s.update(image="registry.local/streamjob:2", restartNonce=3))
    world.edit(set_job(upgradeMode="stateless"))
    world.settle()
    before = dict(world.status["jobStatus"])
    world.known.clear()  # what a new operator process does not have
    decision = world.cycle()
    assert decision.plan.actions == ()
    assert world.status["jobStatus"]["jobId"] == before["jobId"] == names.job_id(UID, 1)


def test_parallelism_above_the_adopted_max_parallelism_is_refused(world: World) -> None:
    deployed(world)
    world.edit(set_job(parallelism=200))
    decision = world.cycle()
    assert decision.plan.actions == ()
    valid = next(c for c in world.status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False"
    assert "spec.job.parallelism" in valid["message"] and "at most 128" in valid["message"]
    assert len(world.taskmanagers()) == 2


def test_every_plan_holds_at_most_one_destructive_action() -> None:
    with pytest.raises(ValueError, match="one destructive action"):
        plan.Plan(
            recorded=observation.Recorded(),
            operation=None,
            actions=(
                actions.DeletePods(pods=(("a", "1"),), reason="x"),
                actions.Rescale(job_id="j", parallelism=1, scale_down=True),
            ),
        )
