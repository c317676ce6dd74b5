"""``streamjob jobmanager`` and ``streamjob taskmanager``: argument parsing and start-up.

Registered in :mod:`streamjob.cli`; ``python -m streamjob.jobmanager.commands`` runs them alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from streamjob.checkpoint.config import CheckpointConfig, CheckpointingMode
from streamjob.execution.restart import parse_restart_strategy


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    jm = sub.add_parser("jobmanager", help="run a job's JobManager (REST API, checkpoints)")
    jm.add_argument("job", help="module:function, path.py:function or path.py")
    jm.set_defaults(job_args=[])  # arguments after "--" (see split_job_args)
    jm.add_argument("--parallelism", "-p", type=int, default=1)
    jm.add_argument("--max-parallelism", type=int, default=None)
    jm.add_argument("--job-id", default=None)
    jm.add_argument("--checkpoint-dir", default=None)
    jm.add_argument("--checkpoint-interval", type=float, default=None, help="seconds")
    jm.add_argument("--checkpoint-timeout", type=float, default=600.0, help="seconds")
    jm.add_argument(
        "--min-pause", type=float, default=0.0, help="seconds between checkpoints, at least"
    )
    jm.add_argument("--tolerable-failures", type=int, default=0, help="failed checkpoints")
    jm.add_argument("--retained", type=int, default=1, help="completed checkpoints to keep")
    jm.add_argument(
        "--no-incremental",
        dest="incremental",
        action="store_false",
        help="RocksDB: full canonical checkpoints instead of incremental native ones",
    )
    jm.add_argument(
        "--allow-checkpoint-fallback",
        action="store_true",
        help="start from an older checkpoint if the latest is unreadable (may duplicate output)",
    )
    jm.add_argument("--from-savepoint", default=None)
    jm.add_argument("--allow-non-restored-state", action="store_true")
    jm.add_argument("--at-least-once", action="store_true")
    jm.add_argument("--state-backend", default="hashmap", choices=["hashmap", "rocksdb"])
    jm.add_argument("--restart-strategy", default=None)
    jm.add_argument("--heartbeat-timeout", type=float, default=10.0, help="seconds")
    jm.add_argument("--rest-host", default="127.0.0.1")
    jm.add_argument("--rest-port", type=int, default=8081)
    jm.add_argument("--stay", action="store_true", help="keep serving after the job ended")
    tm = sub.add_parser("taskmanager", help="run a TaskManager that joins a JobManager")
    tm.add_argument("--jobmanager", required=True, help="the JobManager's URL")
    tm.add_argument("--host", default=os.environ.get("STREAMJOB_POD_IP", "127.0.0.1"))
    tm.add_argument("--rest-port", type=int, default=0)
    tm.add_argument("--data-port", type=int, default=0)
    tm.add_argument("--tm-id", default=None)
    tm.add_argument("--heartbeat-interval", type=float, default=1.0, help="seconds")
    tm.add_argument("--jobmanager-timeout", type=float, default=10.0, help="seconds")


def split_job_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``streamjob jobmanager JOB [options] -- JOB ARGS``: everything after ``--`` is the job's."""
    argv = list(argv)
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def run_jobmanager(args: argparse.Namespace) -> int:
    from streamjob.cluster.jobmaster import JobMaster, JobSpec
    from streamjob.jobmanager.processes import serve_jobmanager

    checkpoint = None
    if args.checkpoint_dir:
        checkpoint = CheckpointConfig(
            directory=args.checkpoint_dir,
            interval_ms=None
            if args.checkpoint_interval is None
            else int(args.checkpoint_interval * 1000),
            timeout_ms=int(args.checkpoint_timeout * 1000),
            min_pause_ms=int(args.min_pause * 1000),
            tolerable_failures=args.tolerable_failures,
            retained=args.retained,
            incremental=args.incremental,
            allow_checkpoint_fallback=args.allow_checkpoint_fallback,
            job_id=args.job_id,
            from_savepoint=args.from_savepoint,
            allow_non_restored_state=args.allow_non_restored_state,
            mode=CheckpointingMode.AT_LEAST_ONCE
            if args.at_least_once
            else CheckpointingMode.EXACTLY_ONCE,
        )
    spec = JobSpec(
        job_ref=args.job,
        job_args=list(args.job_args),
        parallelism=args.parallelism,
        max_parallelism=args.max_parallelism,
        checkpoint=checkpoint,
        state_backend=args.state_backend,
    )
    restart = parse_restart_strategy(args.restart_strategy) if args.restart_strategy else None
    master = JobMaster(spec, restart=restart, heartbeat_timeout_s=args.heartbeat_timeout)
    return asyncio.run(
        serve_jobmanager(master, args.rest_host, args.rest_port, exit_on_end=not args.stay)
    )


def run_taskmanager(args: argparse.Namespace) -> int:
    from streamjob.jobmanager.processes import serve_taskmanager

    return asyncio.run(
        serve_taskmanager(
            jobmanager_url=args.jobmanager,
            host=args.host,
            rest_port=args.rest_port,
            data_port=args.data_port,
            tm_id=args.tm_id,
            heartbeat_interval_s=args.heartbeat_interval,
            jm_timeout_s=args.jobmanager_timeout,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    parser = argparse.ArgumentParser(prog="streamjob")
    parser.add_argument("--log-level", default=os.environ.get("STREAMJOB_LOG_LEVEL", "WARNING"))
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    own, job_args = split_job_args(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own)
    args.job_args = job_args
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "jobmanager":
        return run_jobmanager(args)
    return run_taskmanager(args)


if __name__ == "__main__":
    raise SystemExit(main())


def run_mini_cluster(args: argparse.Namespace) -> int:
    """``streamjob run --mini-cluster``: a JobManager and N TaskManagers as local processes."""
    import signal
    import sys
    import tempfile
    import time
    from pathlib import Path

    from streamjob.cluster.minicluster import MiniCluster

    jm_args = [args.job, "-p", str(args.parallelism)]
    flags = {
        "--max-parallelism": args.max_parallelism,
        "--checkpoint-dir": args.checkpoint_dir,
        "--checkpoint-interval": args.checkpoint_interval,
        "--from-savepoint": args.from_savepoint,
        "--job-id": args.job_id,
        "--state-backend": args.state_backend,
        "--restart-strategy": args.restart_strategy,
        "--retained": args.retained,
    }
    for flag, value in flags.items():
        if value is not None:
            jm_args += [flag, str(value)]
    if args.allow_non_restored_state:
        jm_args.append("--allow-non-restored-state")
    if args.at_least_once:
        jm_args.append("--at-least-once")
    if args.allow_checkpoint_fallback:
        jm_args.append("--allow-checkpoint-fallback")
    logs = Path(tempfile.mkdtemp(prefix="streamjob-minicluster-"))
    cluster = MiniCluster(log_dir=logs, forward_output=True)
    stopping = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)
        print("\n[streamjob] interrupted: cancelling the job...", file=sys.stderr, flush=True)
        cluster.terminate()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        cluster.start_jobmanager(*jm_args)
        for _ in range(args.parallelism):
            cluster.start_taskmanager()
        print(
            f"[streamjob] mini-cluster: JobManager {cluster.url} and {args.parallelism} "
            f"TaskManager(s); logs in {logs}",
            file=sys.stderr,
            flush=True,
        )
        progress = _MiniClusterProgress(cluster)
        assert cluster.jobmanager is not None
        while cluster.jobmanager.poll() is None:
            time.sleep(0.1)
            if not args.quiet and progress.due(args.progress_interval):
                progress.report()
        code = cluster.jobmanager.returncode
    finally:
        cluster.close()
    elapsed = time.monotonic() - started
    if stopping:
        print(f"[streamjob] cancelled after {elapsed:.1f}s", file=sys.stderr)
        return 130
    outcome = "finished" if code == 0 else "FAILED"
    print(f"[streamjob] {outcome} in {elapsed:.1f}s (logs in {logs})", file=sys.stderr)
    if code != 0:
        print(cluster.logs(15), file=sys.stderr)
    return 0 if code == 0 else 1


class _MiniClusterProgress:
    def __init__(self, cluster: object) -> None:
        import time

        self.cluster = cluster
        self.last_time = time.monotonic()
        self.last_records = 0

    def due(self, interval: float) -> bool:
        import time

        return time.monotonic() - self.last_time >= interval

    def report(self) -> None:
        import sys
        import time

        job = self.cluster.job()  # type: ignore[attr-defined]
        now = time.monotonic()
        if job is None:
            return
        records = int(job.get("source_records", 0))
        rate = (records - self.last_records) / max(1e-6, now - self.last_time)
        self.last_time, self.last_records = now, max(records, self.last_records)
        stats = self.cluster.client.get(f"/jobs/{job['id']}/checkpoints")  # type: ignore[attr-defined]
        latest = stats.get("latest", {}).get("completed")
        checkpoint = "none" if not latest else f"{latest['id']} ({latest['size_bytes']:,} B)"
        print(
            f"[streamjob] {job['state']:<10} source {records:>12,} records "
            f"({max(0.0, rate):>10,.0f}/s)  last checkpoint {checkpoint}  "
            f"restarts {job['restarts']}",
            file=sys.stderr,
            flush=True,
        )
