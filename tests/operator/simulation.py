"""A simulated cluster for the pure tests: the operator's real decisions, a toy world around them.

:class:`World` holds one StreamJob (its spec and status as an API server would store them), its
pods, Service and ConfigMap, and a toy JobManager (one job per job id, its parallelism, its
checkpoints, savepoints). :meth:`World.cycle` runs exactly the reconciler's pure path
(:func:`streamjob.operator.core.cycle.read`/``decide``), checks the status against the CRD schema
with pruning, stores it, and applies the plan's actions to the world, recording which checkpoint
or savepoint each job attempt restored (the start rule of DESIGN.md section 6). No I/O, no clock:
``World.now`` moves only when a test says so.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from streamjob.jobmanager import dto
from streamjob.operator.core import actions, cycle, names, observation, plan, status
from tests.operator import schema

NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)
UID = "9d5a3f1e-0000-4000-8000-000000000001"


def spec_dict(**job: Any) -> dict[str, Any]:
    return {
        "image": "registry.local/streamjob:1",
        "job": {"entrypoint": "jobs.wordcount:build", "parallelism": 2, **job},
        "checkpoints": {"dir": "s3://checkpoints/wordcount", "interval": "5s"},
    }


@dataclasses.dataclass
class Job:
    id: str
    parallelism: int
    max_parallelism: int = 128
    state: dto.JobState = dto.JobState.RUNNING
    restarts: int = 0
    restored_from: str | None = None
    stopped_with_savepoint: str | None = None

    def details(self) -> dto.JobDetails:
        return dto.JobDetails(
            id=self.id,
            name="wc",
            state=self.state,
            start_time_ms=1_700_000_000_000,
            end_time_ms=None,
            duration_ms=0,
            parallelism=self.parallelism,
            max_parallelism=self.max_parallelism,
            restarts=self.restarts,
            attempt=0,
            source_records=0,
            last_failure=None,
            stopped_with_savepoint=self.stopped_with_savepoint,
            vertices=[],
        )


@dataclasses.dataclass
class World:
    spec: dict[str, Any]
    name: str = "wordcount"
    namespace: str = "default"
    uid: str = UID
    generation: int = 1
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    service: bool = False
    config_map: dict[str, str] | None = None
    secret_keys: frozenset[str] | None = None
    now: datetime.datetime = NOW
    settings: plan.PlanSettings = dataclasses.field(
        default_factory=lambda: plan.PlanSettings(rescale_cooldown_s=30)
    )
    #: the JobManager's jobs, by job id; checkpoints written under each job id
    jobs: dict[str, Job] = dataclasses.field(default_factory=dict)
    checkpoints: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    savepoints: dict[str, dto.SavepointStatus] = dataclasses.field(default_factory=dict)
    complete_savepoints: bool = True
    pods_become_ready: bool = True
    jobmanager_up: bool = True
    reports: list[str] = dataclasses.field(default_factory=list)
    events: list[status.Event] = dataclasses.field(default_factory=list)
    plans: list[plan.Plan] = dataclasses.field(default_factory=list)
    known: dict[str, str] = dataclasses.field(default_factory=dict)
    _uids: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.spec = self._admit(self.spec)

    # -- the user's side ----------------------------------------------------------------------
    def _admit(self, spec: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> Any:
        stored, errors = schema.admit(
            {"apiVersion": "streamjob.io/v1alpha1", "kind": "StreamJob", "spec": spec},
            old={"spec": old} if old is not None else None,
            cel=False,
        )
        assert not errors, errors
        return stored["spec"]

    def edit(self, change: Callable[[dict[str, Any]], None]) -> None:
        import copy

        new = copy.deepcopy(self.spec)
        change(new)
        new = self._admit(new, self.spec)
        if new != self.spec:
            self.spec, self.generation = new, self.generation + 1

    def tick(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)

    # -- observation --------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        return {
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "generation": self.generation,
            },
            "spec": self.spec,
            "status": self.status,
        }

    def _jobmanager(self, reading: cycle.Reading) -> observation.JobManagerView | None:
        jm = self.pods.get(names.jobmanager_pod(self.name))
        if jm is None or jm["phase"] != "Running" or not self.jobmanager_up:
            return None
        job_id = names.job_id(self.uid, reading.recorded.restore_generation)
        job = self.jobs.get(job_id)
        if job is None:
            return observation.JobManagerView(reachable=True)
        ids = self.checkpoints.get(job_id, [])
        last = (
            observation.CheckpointView(id=ids[-1], path=f"chk-{ids[-1]}", time_ms=1_700_000_000_000)
            if ids
            else None
        )
        sp = reading.recorded.savepoint
        savepoint = None
        if sp is not None and sp.state.in_flight and sp.trigger_id is not None:
            savepoint = self.savepoints.get(sp.trigger_id)
        return observation.JobManagerView(
            reachable=True, job=job.details(), last_checkpoint=last, savepoint=savepoint
        )

    def observe(self, reading: cycle.Reading) -> observation.Observation:
        pods = tuple(
            observation.pod_info(p["manifest"] | {"status": self._pod_status(p)})
            for p in self.pods.values()
        )
        uids = {p.uid for p in pods}
        secret = None
        s3 = reading.spec.checkpoints.s3 if reading.spec else None
        if s3 is not None and s3.credentials_secret:
            secret = observation.SecretView(
                name=s3.credentials_secret,
                exists=self.secret_keys is not None,
                keys=self.secret_keys or frozenset(),
            )
        obs = observation.Observation(
            name=self.name,
            namespace=self.namespace,
            uid=self.uid,
            generation=self.generation,
            now=self.now,
            pods=pods,
            service_exists=self.service,
            config_map_data=self.config_map,
            secret=secret,
            vanished=tuple((n, u) for n, u in self.known.items() if u not in uids),
        )
        return dataclasses.replace(obs, jobmanager=self._jobmanager(reading))

    @staticmethod
    def _pod_status(pod: Mapping[str, Any]) -> dict[str, Any]:
        ready = "True" if pod["ready"] else "False"
        return {
            "phase": pod["phase"],
            "podIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": ready}],
        }

    # -- one reconcile cycle ------------------------------------------------------------------
    def cycle(self) -> cycle.Decision:
        reading = cycle.read(self.body())
        obs = self.observe(reading)
        decision = cycle.decide(reading, obs, settings=self.settings)
        patched = schema.apply_merge_patch(self.status, decision.patch)
        stored, errors = schema.admit_status(patched)
        assert not errors, errors
        assert stored == patched, "the API server would prune part of this status"
        self.status = stored
        self.events += decision.events
        self.plans.append(decision.plan)
        removed = set()
        for action in decision.plan.actions:
            removed |= self._apply(action)
        self.known = {n: p["uid"] for n, p in self.pods.items() if p["uid"] not in removed}
        self._start_jobs()
        return decision

    def run(self, cycles: int = 10, *, step_s: float = 1.0) -> None:
        for _ in range(cycles):
            self.cycle()
            self.tick(step_s)

    def settle(self, *, limit: int = 30, step_s: float = 1.0) -> cycle.Decision:
        """Cycle until a plan has nothing left to do (and nothing is in flight)."""
        for _ in range(limit):
            decision = self.cycle()
            self.tick(step_s)
            if not decision.plan.actions and decision.plan.operation in (
                plan.Operation.DEPLOYED,
                plan.Operation.SUSPENDED,
                None,
            ):
                return decision
        raise AssertionError(f"not settled after {limit} cycles: {self.plans[-3:]}")

    # -- the world's side ---------------------------------------------------------------------
    def _apply(self, action: actions.Action) -> set[str]:
        removed: set[str] = set()
        match action:
            case actions.ApplyConfigMap(manifest=m):
                self.config_map = dict(m["data"])
            case actions.CreateService():
                self.service = True
            case actions.CreatePod(manifest=m):
                name = m["metadata"]["name"]
                if name not in self.pods:
                    uid = f"pod-uid-{next(self._uids)}"
                    manifest = {**m, "metadata": {**m["metadata"], "uid": uid}}
                    self.pods[name] = {
                        "manifest": manifest,
                        "uid": uid,
                        "phase": "Running",
                        "ready": self.pods_become_ready,
                    }
            case actions.DeletePods(pods=pods) | actions.RemoveTerminatedPods(pods=pods):
                for name, uid in pods:
                    if name in self.pods and self.pods[name]["uid"] == uid:
                        del self.pods[name]
                        removed.add(uid)
                        if name == names.jobmanager_pod(self.name):
                            self.jobs.clear()  # the JobManager process is gone
            case actions.ReportFailedTaskManager(pod_uid=uid):
                self.reports.append(uid)
            case actions.Rescale(job_id=job_id, parallelism=p):
                self.jobs[job_id].parallelism = p
            case actions.TriggerSavepoint(job_id=job_id, target_dir=target, stop=stop):
                self._trigger(job_id, target, stop)
        return removed

    def _trigger(self, job_id: str, target: str, stop: bool) -> None:
        trigger = f"t{len(self.savepoints) + 1}"
        location = f"{target}/savepoint-{job_id}-{len(self.savepoints) + 1}"
        if self.complete_savepoints:
            self.savepoints[trigger] = dto.SavepointStatus(
                trigger_id=trigger, status=dto.OperationStatus.COMPLETED, location=location
            )
            if stop:
                self.jobs[job_id].state = dto.JobState.FINISHED
                self.jobs[job_id].stopped_with_savepoint = location
        else:
            self.savepoints[trigger] = dto.SavepointStatus(
                trigger_id=trigger, status=dto.OperationStatus.IN_PROGRESS
            )
        # the reconciler records the trigger id right after the call (its second, small patch)
        self.status["savepoint"] = {
            **self.status["savepoint"],
            "triggerId": trigger,
            "state": "IN_PROGRESS",
        }

    def _start_jobs(self) -> None:
        """A running JobManager pod starts its job by the start rule (DESIGN.md section 6)."""
        jm = self.pods.get(names.jobmanager_pod(self.name))
        if jm is None or jm["phase"] != "Running":
            return
        args = jm["manifest"]["spec"]["containers"][0]["args"]
        job_id = args[args.index("--job-id") + 1]
        if job_id in self.jobs:
            return
        ids = self.checkpoints.get(job_id)
        source = None
        if ids:
            source = f"{job_id}/chk-{ids[-1]}"
        elif "--from-savepoint" in args:
            source = args[args.index("--from-savepoint") + 1]
        self.jobs[job_id] = Job(
            id=job_id,
            parallelism=int(args[args.index("--parallelism") + 1]),
            restored_from=source,
        )

    def checkpoint(self) -> int:
        """The current job completes a checkpoint."""
        job_id = names.job_id(self.uid, int(self.status["jobStatus"]["restoreGeneration"]))
        ids = self.checkpoints.setdefault(job_id, [])
        ids.append(len(ids) + 1)
        return ids[-1]

    # -- reading the world --------------------------------------------------------------------
    @property
    def job(self) -> Job:
        return self.jobs[self.status["jobStatus"]["jobId"]]

    def taskmanagers(self) -> list[str]:
        return sorted(n for n in self.pods if "-taskmanager-" in n)

    def fail_pod(self, name: str) -> str:
        self.pods[name]["phase"] = "Failed"
        self.pods[name]["ready"] = False
        return str(self.pods[name]["uid"])

    def event_reasons(self) -> list[str]:
        return [e.reason for e in self.events]
