"""``streamjob jobmanager`` and ``streamjob taskmanager``: argument parsing and start-up."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence

from streamjob.checkpoint.config import CheckpointConfig, CheckpointingMode
from streamjob.execution.restart import parse_restart_strategy


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    jm = sub.add_parser("jobmanager", help="run a job's JobManager (REST API, checkpoints)")
    jm.add_argument("job", help="module:function, path.py:function or path.py")
    jm.add_argument("job_args", nargs="*", help="arguments for the job (after --)")
    jm.add_argument("--parallelism", "-p", type=int, default=1)
    jm.add_argument("--max-parallelism", type=int, default=None)
    jm.add_argument("--job-id", default=None)
    jm.add_argument("--checkpoint-dir", default=None)
    jm.add_argument("--checkpoint-interval", type=float, default=None, help="seconds")
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


def run_jobmanager(args: argparse.Namespace) -> int:
    from streamjob.cluster.jobmaster import JobMaster, JobSpec
    from streamjob.cluster.processes import serve_jobmanager

    checkpoint = None
    if args.checkpoint_dir:
        checkpoint = CheckpointConfig(
            directory=args.checkpoint_dir,
            interval_ms=None
            if args.checkpoint_interval is None
            else int(args.checkpoint_interval * 1000),
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
    from streamjob.cluster.processes import serve_taskmanager

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
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "jobmanager":
        return run_jobmanager(args)
    return run_taskmanager(args)


if __name__ == "__main__":
    raise SystemExit(main())
