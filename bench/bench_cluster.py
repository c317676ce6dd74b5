"""The distributed runtime: W1 over real JobManager/TaskManager processes on loopback.

Prints W1 events/s at parallelism 1 and 2: over the whole run (deploy, job import and
ramp-up included), in the steady state (sampled live from the TaskManagers' /metrics), and
per TaskManager CPU-second (what the data plane costs per event, independent of what else
the machine runs; on a 2-core machine the JobManager and both TaskManagers share the cores);
the scaling ratios p2/p1; the recovery time after a TaskManager
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
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.cluster import local_cluster

JOB = "bench/cluster_jobs.py:w1"
EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000


def running_time(log: str) -> float:
    match = re.search(r"running time ([0-9.]+)s", log)
    if not match:
        raise RuntimeError(f"no running time in the JobManager's output:\n{log[-2000:]}")
    return float(match.group(1))


def taskmanagers(cluster: object) -> list[dict[str, object]]:
    try:
        found: list[dict[str, object]] = cluster.get("/internal/taskmanagers")  # type: ignore[attr-defined]
    except httpx.HTTPError:
        return []  # the JobManager is still starting
    return found


def tm_records_in(urls: list[str]) -> int:
    """Records taken in by every subtask, read live from each TaskManager's /metrics."""
    total = 0
    for url in urls:
        try:
            text = httpx.get(url.rstrip("/") + "/metrics", timeout=2.0).text
        except httpx.HTTPError:
            continue
        for line in text.splitlines():
            if line.startswith("streamjob_task_records_in_total{"):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Rate:
    whole_run: float  # events/s from the JobManager's running time (deploy to end)
    steady: float  # events/s between 20 % and 80 % of the records, sampled live
    per_cpu_s: float  # events per TaskManager CPU-second in that window (load-independent)


def w1_rate(p: int) -> Rate:
    samples: list[tuple[float, int, float]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        local_cluster(Path(tmp), {"BENCH_EVENTS": str(EVENTS)}) as cluster,
    ):
        cluster.start_jobmanager(JOB, "-p", str(p))
        pids = [cluster.start_taskmanager().pid for _ in range(p)]
        cluster.wait_for(lambda: len(taskmanagers(cluster)) == p, 60, "registrations")
        urls = [str(t["rest_url"]) for t in taskmanagers(cluster)]
        while cluster.jobmanager is not None and cluster.jobmanager.poll() is None:
            samples.append((time.monotonic(), tm_records_in(urls), cpu_seconds(pids)))
            time.sleep(0.1)
        code = cluster.wait_exit(600)
        log = (Path(tmp) / "jobmanager.log").read_text()
        if code != 0:
            raise RuntimeError(cluster.logs())
    window = [s for s in samples if 0.2 * EVENTS <= s[1] <= 0.8 * EVENTS]
    steady = per_cpu = float("nan")
    if len(window) >= 2 and window[-1][0] > window[0][0]:
        (t0, n0, c0), (t1, n1, c1) = window[0], window[-1]
        steady = (n1 - n0) / (t1 - t0)
        per_cpu = (n1 - n0) / max(c1 - c0, 1e-9)
    return Rate(EVENTS / running_time(log), steady, per_cpu)


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
    rates = {}
    for p in (1, 2):
        r = rates[p] = w1_rate(p)
        print(
            f"  parallelism {p}: {r.whole_run:>10,.0f} events/s whole run, {r.steady:>10,.0f} "
            f"steady state, {r.per_cpu_s:>10,.0f} per TaskManager CPU-second"
        )
    p1, p2 = rates[1], rates[2]
    print(
        f"  scaling p2/p1: whole run {p2.whole_run / p1.whole_run:.2f}, steady state "
        f"{p2.steady / p1.steady:.2f}; CPU per event at p2 / p1 {p1.per_cpu_s / p2.per_cpu_s:.2f}"
    )
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
                "w1_p1_events_per_s": round(p1.whole_run),
                "w1_p2_events_per_s": round(p2.whole_run),
                "scaling": round(p2.whole_run / p1.whole_run, 2),
                "w1_p1_steady_events_per_s": round(p1.steady),
                "w1_p2_steady_events_per_s": round(p2.steady),
                "steady_scaling": round(p2.steady / p1.steady, 2),
                "w1_p1_events_per_tm_cpu_s": round(p1.per_cpu_s),
                "w1_p2_events_per_tm_cpu_s": round(p2.per_cpu_s),
                "recovery_heartbeat_s": round(heartbeat, 2),
                "recovery_report_s": round(report, 2),
                "rescale_s": round(rescale_s, 2),
                "load": list(os.getloadavg()),
            }
        )
    )


if __name__ == "__main__":
    main()
