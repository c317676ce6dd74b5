"""The operator end to end on the pod-runner setup: apply, TaskManager pod loss, rescale 2 -> 3.

The real kopf operator against kmock, every pod it creates run as a real ``streamjob
jobmanager``/``taskmanager`` process on its own 127.X.Y.N (``tests/operator/harness.py``),
checkpoints on a local SeaweedFS, the job ``tests/operator/jobs.py`` (keyed counts into the
exactly-once FileSink) at RATE records/s. Prints:

- apply -> first record processed (the StreamJob created, to records counted by a TaskManager);
- TaskManager pod deletion -> recovery (the pod deleted, to the first record processed by the
  restored attempt; target < 10 s), and when the operator had the replacement pod running;
- rescale 2 -> 3 end to end (``spec.job.parallelism`` patched, to the first record processed at
  parallelism 3; target < 20 s), and when the status says STABLE at 3;

with the load average before and after, then one JSON line. "Processed" is read from the
JobManager's view of each TaskManager's metrics, which heartbeats refresh every second: the
times are up to about a second late.

Usage: ``.venv/bin/python bench/bench_operator.py [RATE]`` from the repository root.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamjob.storage import seaweedfs
from tests.operator.harness import NAMESPACE, S3Settings, Stack, job_spec, running_stack

JOB = "bench"
RATE = float(sys.argv[1]) if len(sys.argv) > 1 else 5_000.0
EVENTS = 10**9  # runs until the benchmark is done with it
BUCKET = "bench-operator"


async def until(what: str, check: Callable[[], Awaitable[Any]], limit_s: float = 120.0) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            found = await check()
        except Exception:  # the JobManager is (re)starting
            found = None
        if found:
            return found
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def records(stack: Stack, *, after_attempt: int = -1) -> tuple[int, int, int]:
    """(records taken in by the newest attempt's tasks, that attempt, its parallelism)."""
    job = await stack.jobmanager(JOB, f"/jobs/{await job_id(stack)}")
    total = 0
    for tm in await stack.jobmanager(JOB, "/internal/taskmanagers"):
        metrics = tm.get("metrics") or {}
        if metrics.get("attempt") == job["attempt"] and job["attempt"] > after_attempt:
            total += sum(t["records_in"] for t in metrics.get("tasks", []))
    return total, int(job["attempt"]), int(job["parallelism"])


async def job_id(stack: Stack) -> str:
    status = await stack.cluster.status(JOB)
    return str(status["jobStatus"]["jobId"])


async def run(server: seaweedfs.SeaweedFSServer, tmp: Path) -> dict[str, float]:
    s3 = S3Settings(
        endpoint=server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )
    results: dict[str, float] = {}
    async with running_stack(tmp / "logs", reconcile_interval_s=2.0) as stack:
        await stack.create_s3_secret(s3)
        spec = job_spec(
            out=tmp / "out",
            events=EVENTS,
            rate=RATE,
            checkpoint_dir=f"s3://{BUCKET}/checkpoints",
            s3=s3,
        )
        started = time.monotonic()
        await stack.cluster.apply(JOB, spec)
        await until("the first record", lambda: _processed(stack))
        results["apply_to_first_record_s"] = time.monotonic() - started

        await stack.wait_status(
            JOB, "two checkpoints", lambda s: (s.get("lastCheckpoint") or {}).get("id", 0) >= 2
        )
        _, attempt, _ = await records(stack)
        victim = stack.cluster.pods()["bench-taskmanager-1"]["metadata"]["uid"]
        started = time.monotonic()
        await stack.cluster.client.delete_pod(NAMESPACE, "bench-taskmanager-1")
        await until("the replacement pod running", lambda: _replaced(stack, victim))
        results["pod_deleted_to_replacement_running_s"] = time.monotonic() - started
        await until("the first record after the restore", lambda: _processed(stack, attempt))
        results["pod_deleted_to_recovered_s"] = time.monotonic() - started

        await stack.wait_status(
            JOB,
            "STABLE after the recovery",
            lambda s: s["lifecycleState"] == "STABLE" and s["jobStatus"]["restarts"] >= 1,
        )
        _, attempt, _ = await records(stack)
        started = time.monotonic()
        await stack.cluster.patch_spec(JOB, {"job": {"parallelism": 3}})
        try:
            await until("records at parallelism 3", lambda: _processed(stack, attempt, p=3))
        except TimeoutError:
            print(stack.log_tails(40), file=sys.stderr)
            raise
        results["rescale_2_to_3_to_first_record_s"] = time.monotonic() - started
        await stack.wait_status(
            JOB,
            "STABLE at parallelism 3",
            lambda s: s["lifecycleState"] == "STABLE" and s["jobStatus"]["parallelism"] == 3,
        )
        results["rescale_2_to_3_to_stable_status_s"] = time.monotonic() - started
    return results


async def _processed(stack: Stack, after_attempt: int = -1, *, p: int | None = None) -> bool:
    total, _, parallelism = await records(stack, after_attempt=after_attempt)
    return total > 0 and (p is None or parallelism == p)


async def _replaced(stack: Stack, victim: str) -> bool:
    pod = stack.cluster.pods().get("bench-taskmanager-1") or {}
    running = (pod.get("status") or {}).get("phase") == "Running"
    return running and pod["metadata"]["uid"] != victim


def main() -> None:
    load_before = os.getloadavg()
    print(f"operator on the pod-runner setup: source {RATE:,.0f} records/s, load {load_before}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        seaweedfs.running_seaweedfs(buckets=[BUCKET]) as server,
    ):
        results = asyncio.run(run(server, Path(tmp)))
    load_after = os.getloadavg()
    targets = {"pod_deleted_to_recovered_s": 10.0, "rescale_2_to_3_to_first_record_s": 20.0}
    for name, seconds in results.items():
        target = targets.get(name)
        verdict = "" if target is None else f"  (target < {target:g} s: "
        verdict += "" if target is None else ("met)" if seconds < target else "MISSED)")
        print(f"  {name:<40} {seconds:6.2f} s{verdict}")
    print(f"load average after: {load_after}")
    print(
        json.dumps(
            {
                "bench": "operator",
                "rate": RATE,
                **{k: round(v, 3) for k, v in results.items()},
                "load_before": list(load_before),
                "load_after": list(load_after),
            }
        )
    )


if __name__ == "__main__":
    main()
