"""The distributed runtime: W1 over real JobManager/TaskManager processes on loopback.

Prints W1 events/s at parallelism 1 and 2 (and the scaling ratio p2/p1; on a 2-core machine
the JobManager and both TaskManagers share the cores), the recovery time after a TaskManager
SIGKILL (from the kill to the first record processed by the new attempt) with heartbeat
detection and with a direct failure report, and the time of a 2 -> 3 rescale through the REST
API; then one JSON line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.cluster import local_cluster

JOB = "bench/cluster_jobs.py:w1"
EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000


def running_time(log: str) -> float:
    match = re.search(r"running time ([0-9.]+)s", log)
    if not match:
        raise RuntimeError(f"no running time in the JobManager's output:\n{log[-2000:]}")
    return float(match.group(1))


def w1_rate(p: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        with local_cluster(Path(tmp), {"BENCH_EVENTS": str(EVENTS)}) as cluster:
            cluster.start_jobmanager(JOB, "-p", str(p))
            for _ in range(p):
                cluster.start_taskmanager()
            code = cluster.wait_exit(600)
            log = (Path(tmp) / "jobmanager.log").read_text()
            if code != 0:
                raise RuntimeError(cluster.logs())
        return EVENTS / running_time(log)


def records_of_attempt(cluster: object, attempt: int) -> int:
    total = 0
    for tm in cluster.get("/internal/taskmanagers"):  # type: ignore[attr-defined]
        metrics = tm.get("metrics") or {}
        if metrics.get("attempt") == attempt:
            total += sum(t["records_in"] for t in metrics.get("tasks", []))
    return total


def recovery(detection: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"BENCH_EVENTS": "100000000", "BENCH_RATE": "50000"}
        with local_cluster(Path(tmp), env) as cluster:
            cluster.start_jobmanager(
                JOB,
                "-p",
                "2",
                "--checkpoint-dir",
                f"{tmp}/chk",
                "--checkpoint-interval",
                "1",
                "--heartbeat-timeout",
                "3",
                "--restart-strategy",
                "fixed-delay:3:0",
            )
            cluster.start_taskmanager()
            victim = cluster.start_taskmanager()
            cluster.wait_for(
                lambda: (
                    (j := cluster.job())
                    and j["state"] == "RUNNING"
                    and records_of_attempt(cluster, 0) > 0
                ),
                60,
                "running",
            )
            time.sleep(2.5)  # let checkpoints complete
            job = cluster.job()
            assert job is not None
            pod = next(
                t["pod_uid"] for t in cluster.get("/internal/taskmanagers") if t["id"] == "tm-1"
            )
            cluster.start_taskmanager()  # the replacement is up before the kill (as a spare)
            time.sleep(1.0)
            killed = time.monotonic()
            victim.send_signal(signal.SIGKILL)
            if detection == "report":
                cluster.post(f"/taskmanagers/{pod}/failed")
            cluster.wait_for(
                lambda: records_of_attempt(cluster, job["attempt"] + 1) > 0,
                120,
                "the first record after the restore",
            )
            return time.monotonic() - killed


def rescale() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"BENCH_EVENTS": "100000000", "BENCH_RATE": "50000"}
        with local_cluster(Path(tmp), env) as cluster:
            cluster.start_jobmanager(
                JOB, "-p", "2", "--checkpoint-dir", f"{tmp}/chk", "--checkpoint-interval", "1"
            )
            for _ in range(3):
                cluster.start_taskmanager()
            cluster.wait_for(
                lambda: (
                    (j := cluster.job())
                    and j["state"] == "RUNNING"
                    and records_of_attempt(cluster, 0) > 0
                ),
                60,
                "running",
            )
            time.sleep(2.5)
            job = cluster.job()
            assert job is not None
            started = time.monotonic()
            cluster.post(f"/jobs/{job['id']}/rescale", {"parallelism": 3})
            cluster.wait_for(
                lambda: records_of_attempt(cluster, job["attempt"] + 1) > 0,
                120,
                "the first record at parallelism 3",
            )
            return time.monotonic() - started


def main() -> None:
    print(f"distributed W1: {EVENTS:,} events, load average {os.getloadavg()}")
    p1 = w1_rate(1)
    print(f"  parallelism 1: {p1:>12,.0f} events/s")
    p2 = w1_rate(2)
    print(f"  parallelism 2: {p2:>12,.0f} events/s   scaling p2/p1 = {p2 / p1:.2f}")
    heartbeat = recovery("heartbeat")
    print(f"  recovery after SIGKILL, heartbeat detection (3 s timeout): {heartbeat:.2f}s")
    report = recovery("report")
    print(f"  recovery after SIGKILL, direct failure report:             {report:.2f}s")
    rescale_s = rescale()
    print(f"  rescale 2 -> 3 through the REST API:                       {rescale_s:.2f}s")
    print(
        json.dumps(
            {
                "bench": "cluster",
                "events": EVENTS,
                "w1_p1_events_per_s": round(p1),
                "w1_p2_events_per_s": round(p2),
                "scaling": round(p2 / p1, 2),
                "recovery_heartbeat_s": round(heartbeat, 2),
                "recovery_report_s": round(report, 2),
                "rescale_s": round(rescale_s, 2),
                "load": list(os.getloadavg()),
            }
        )
    )


if __name__ == "__main__":
    main()
