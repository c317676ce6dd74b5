"""The ``streamjob`` command line.

- ``streamjob run JOB [-p N] [--checkpoint-dir URL ...] [--rest-port PORT]``: run a job on the
  local runtime (through ``env.create_runner()``: checkpoints, restarts, the start rule), with
  progress lines on stderr (records/s, the last checkpoint, restarts); with ``--rest-port`` it
  serves the JobManager REST API (:mod:`streamjob.jobmanager`) on 127.0.0.1 while it runs.
  Ctrl-C cancels the job cleanly (operators are closed, nothing half-written is published) and
  exits with 130.
- ``streamjob checkpoints list URL`` / ``inspect PATH``: read checkpoint directories
  (:mod:`streamjob.jobmanager.inspection`), for people or, with ``--json``, for tools.
- ``streamjob savepoint --rest URL``: ask a running job for a savepoint and wait for it
  (:mod:`streamjob.client`).

Progress goes to stderr, results (job output, locations, listings) to stdout. Errors are one
``streamjob: error: ...`` line, without a traceback, and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from streamjob import errors
from streamjob.api.environment import StreamEnvironment
from streamjob.checkpoint.config import CheckpointingMode
from streamjob.execution.local_job import LocalJobRunner
from streamjob.execution.restart import parse_restart_strategy
from streamjob.jobmanager import commands, inspection, inspection_text
from streamjob.jobmanager.gateway import LocalRunnerGateway
from streamjob.jobref import load_job
from streamjob.runtime.events import CheckpointKind
from streamjob.runtime.local_executor import Progress

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_INTERVAL_S = 10.0
#: how long a finished run keeps serving REST so a client can read a savepoint's outcome
REST_LINGER_S = 5.0
#: options that only mean something with checkpointing
_CHECKPOINT_ONLY = (
    "checkpoint_interval",
    "from_savepoint",
    "allow_non_restored_state",
    "job_id",
    "at_least_once",
    "allow_checkpoint_fallback",
    "allow_unsafe_storage",
    "retained",
)


def _log(message: str) -> None:
    print(f"[streamjob] {message}", file=sys.stderr, flush=True)


# -- parser -------------------------------------------------------------------------------------
def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="run a job on the local runtime until its input ends")
    run.add_argument("job", help="module:function, path.py:function or path.py")
    run.add_argument("--parallelism", "-p", type=int, default=1)
    run.add_argument("--max-parallelism", type=int, default=None)
    run.add_argument(
        "--progress-interval", type=float, default=2.0, help="seconds between progress lines"
    )
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    cp = run.add_argument_group("checkpoints and recovery")
    cp.add_argument("--checkpoint-dir", metavar="URL", help="s3://bucket/prefix, file:// or a path")
    cp.add_argument(
        "--checkpoint-interval",
        type=float,
        metavar="SECONDS",
        help=f"seconds between checkpoints (default {DEFAULT_CHECKPOINT_INTERVAL_S:g})",
    )
    cp.add_argument("--retained", type=int, help="completed checkpoints to keep (default 1)")
    cp.add_argument("--from-savepoint", metavar="URL", help="start from this savepoint")
    cp.add_argument(
        "--allow-non-restored-state",
        action="store_true",
        default=None,
        help="restore even if the savepoint has state of operators the job no longer has",
    )
    cp.add_argument("--job-id", help="the job's id (default: derived from --checkpoint-dir)")
    cp.add_argument(
        "--state-backend", choices=["hashmap", "rocksdb"], default=None, help="default hashmap"
    )
    cp.add_argument(
        "--restart-strategy",
        metavar="SPEC",
        help="none | fixed-delay:N:SECONDS | exponential-delay[:MAX] | "
        "failure-rate:N:INTERVAL:DELAY",
    )
    cp.add_argument(
        "--at-least-once",
        action="store_true",
        default=None,
        help="checkpoints without barrier alignment (replays may duplicate state updates)",
    )
    cp.add_argument(
        "--allow-checkpoint-fallback",
        action="store_true",
        default=None,
        help="start from an older checkpoint if the latest is unreadable (may duplicate output)",
    )
    cp.add_argument(
        "--allow-unsafe-storage",
        action="store_true",
        default=None,
        help="run exactly-once on storage without put-if-absent (unsafe)",
    )
    run.add_argument(
        "--mini-cluster",
        action="store_true",
        help="run a JobManager and N TaskManagers as local processes (TCP data plane, HTTP "
        "control plane), as on Kubernetes; default: every subtask in this process",
    )
    rest = run.add_argument_group("REST API")
    rest.add_argument("--savepoint-dir", metavar="URL", help="default target of REST savepoints")
    rest.add_argument(
        "--rest-port",
        type=int,
        metavar="PORT",
        help="serve the REST API on 127.0.0.1:PORT while the job runs (0 picks a free port)",
    )


# -- operator (streamjob.operator) ---------------------------------------------------------------
def _add_operator(sub: Any) -> None:
    op = sub.add_parser("operator", help="run the StreamJob Kubernetes operator (kopf)")
    op.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable; default: the whole cluster)",
    )
    op.add_argument(
        "--interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between periodic reconciles of each StreamJob (default 10)",
    )
    op.add_argument("--rescale-cooldown", type=float, default=30.0, metavar="SECONDS")
    op.add_argument("--savepoint-timeout", type=float, default=600.0, metavar="SECONDS")
    op.add_argument(
        "--jobmanager-address",
        choices=["service", "pod-ip"],
        default="service",
        help="reach JobManagers through their Service or their pod IP",
    )
    op.add_argument(
        "--kube-server",
        metavar="URL",
        help="the API server (default: in-cluster config, else the kubeconfig)",
    )
    op.add_argument(
        "--standalone", action="store_true", help="no kopf peering (run a single replica)"
    )
    op.add_argument("--liveness", metavar="URL", help="e.g. http://0.0.0.0:8080/healthz")


def _operator(args: argparse.Namespace) -> int:
    from streamjob.operator import config, main  # kopf and kubernetes only when asked for
    from streamjob.operator.core import plan

    settings = plan.PlanSettings(
        rescale_cooldown_s=args.rescale_cooldown, savepoint_timeout_s=args.savepoint_timeout
    )
    return main.run(
        config.OperatorConfig(
            namespaces=tuple(args.namespace),
            reconcile_interval_s=args.interval,
            plan=settings,
            jobmanager_address=args.jobmanager_address,
            kube_server=args.kube_server,
            standalone=args.standalone,
            liveness_endpoint=args.liveness,
        )
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamjob",
        description="Stateful, exactly-once stream processing with Flink's model, in Python.",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    commands.add_subcommands(sub)
    checkpoints = sub.add_parser("checkpoints", help="list or inspect checkpoint directories")
    what = checkpoints.add_subparsers(dest="action", required=True)
    listing = what.add_parser("list", help="jobs and their checkpoints under a checkpoint dir")
    listing.add_argument("url", help="the checkpoint dir (s3://..., file://... or a path)")
    listing.add_argument("--job-id", help="only this job")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    inspect = what.add_parser("inspect", help="describe one chk-N or savepoint directory")
    inspect.add_argument("path", help=".../JOB_ID/chk-N or .../savepoint-JOB_ID-N")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    savepoint = sub.add_parser("savepoint", help="take a savepoint of a running job (REST)")
    savepoint.add_argument("--rest", required=True, metavar="URL", help="http://127.0.0.1:PORT")
    savepoint.add_argument("--job-id", help="default: the only running job")
    savepoint.add_argument("--target-dir", metavar="DIR", help="default: the job's --savepoint-dir")
    savepoint.add_argument("--stop", action="store_true", help="stop the job after the savepoint")
    savepoint.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS")
    savepoint.add_argument("--poll-interval", type=float, default=0.2, metavar="SECONDS")
    _add_operator(sub)
    return parser


# -- run ----------------------------------------------------------------------------------------
def _configure(env: StreamEnvironment, args: argparse.Namespace) -> None:
    """Apply the command line's checkpoint and restart settings on top of the job's own."""
    if args.checkpoint_dir:
        env.configure_checkpoints(directory=args.checkpoint_dir)
    if env.checkpoint_config is None:
        given = [f"--{n.replace('_', '-')}" for n in _CHECKPOINT_ONLY if getattr(args, n)]
        if given:
            raise errors.JobDefinitionError(
                f"{', '.join(given)} need(s) checkpointing: add --checkpoint-dir URL"
            )
    else:
        settings: dict[str, Any] = {}
        if args.checkpoint_interval is not None:
            settings["interval_ms"] = int(args.checkpoint_interval * 1000)
        elif env.checkpoint_config.interval_ms is None:
            settings["interval_ms"] = int(DEFAULT_CHECKPOINT_INTERVAL_S * 1000)
        for name in (
            "from_savepoint",
            "job_id",
            "retained",
            "allow_non_restored_state",
            "allow_checkpoint_fallback",
            "allow_unsafe_storage",
        ):
            value = getattr(args, name)
            if value is not None:
                settings[name] = value
        if args.at_least_once:
            settings["mode"] = CheckpointingMode.AT_LEAST_ONCE
        env.configure_checkpoints(**settings)
    if args.state_backend:
        env.config.state_backend = args.state_backend
    if args.restart_strategy:
        try:
            env.set_restart_strategy(parse_restart_strategy(args.restart_strategy))
        except ValueError as exc:
            raise errors.JobDefinitionError(f"--restart-strategy: {exc}") from exc


def _checkpoint_text(runner: LocalJobRunner, *, path: bool = False) -> str:
    result = runner.result
    completed = result.checkpoints if result is not None else []
    last = next((c for c in reversed(completed) if c.kind is CheckpointKind.CHECKPOINT), None)
    if last is None:
        return "no checkpoint yet"
    size = inspection_text.human_bytes(last.size_bytes)
    where = f" at {last.path}" if path else ""
    return f"checkpoint {last.checkpoint_id} ({size}){where}"


class _ProgressPrinter:
    """One line per interval: records/s at the sources, processed, last checkpoint, restarts."""

    def __init__(self, runner: LocalJobRunner) -> None:
        self.runner = runner
        self._started = time.monotonic()
        self._last_time = self._started
        self._last_source = 0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        source = progress.source_records
        delta = source - self._last_source if source >= self._last_source else source
        rate = delta / (now - self._last_time) if now > self._last_time else 0.0
        self._last_time, self._last_source = now, source
        line = (
            f"{now - self._started:7.1f}s  source {source:>12,} records ({rate:>11,.0f}/s)  "
            f"processed {progress.records_in:>12,}"
        )
        result = self.runner.result
        if self.runner.checkpoint is not None:
            line += f"  {_checkpoint_text(self.runner)}"
        line += f"  restarts {result.restarts if result is not None and result.attempts else 0}"
        _log(line)


class _AttemptReporter:
    """Prints restores and failures of attempts (polled while running, and once at the end)."""

    def __init__(self, runner: LocalJobRunner) -> None:
        self.runner = runner
        self._restores = -1
        self._failures = -1

    def check(self) -> None:
        result = self.runner.result
        for info in result.attempts if result is not None else []:
            if info.attempt > self._restores:
                self._restores = info.attempt
                if info.restored_checkpoint_id is not None:
                    _log(
                        f"attempt {info.attempt}: restored checkpoint "
                        f"{info.restored_checkpoint_id} from {info.restored_from}"
                    )
            if info.attempt > self._failures and info.failure is not None:
                self._failures = info.attempt
                _log(f"attempt {info.attempt} failed: {info.failure}; restarting if allowed")

    async def watch(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(0.05)


def _end_line(state: str, runner: LocalJobRunner, elapsed: float) -> str:
    result = runner.result
    source = result.source_records if result is not None else 0
    rate = source / elapsed if elapsed > 0 else 0.0
    restarts = result.restarts if result is not None and result.attempts else 0
    text = (
        f"{state} in {elapsed:.2f}s: {source:,} source records ({rate:,.0f}/s) in the last "
        f"attempt, restarts {restarts}"
    )
    if runner.checkpoint is not None:
        text += f"; last {_checkpoint_text(runner, path=True)}"
    if result is not None and result.savepoint_path:
        text += f"; stopped with savepoint {result.savepoint_path}"
    return text


async def _serve_and_run(
    args: argparse.Namespace, gateway: LocalRunnerGateway, printer: _ProgressPrinter | None
) -> asyncio.Task[Any]:
    run = gateway.start(on_progress=printer, progress_interval_s=args.progress_interval)
    if args.rest_port is None:
        return run
    from streamjob.jobmanager.server import RestServer  # FastAPI only when asked for

    await asyncio.sleep(0)  # the runner opens its storage and settles the job id
    server = RestServer(gateway, port=args.rest_port)
    try:
        url = await server.start()
    except BaseException:
        gateway.request_cancel()
        await asyncio.wait({run})
        raise
    _log(f"REST API at {url} (OpenAPI: {url}/docs), job id {gateway.job_id}")

    async def serve_until_done() -> Any:
        try:
            await asyncio.wait({run})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gateway.savepoints_observed(), REST_LINGER_S)
        finally:
            await server.stop()
            await gateway.close()
        return run.result()

    return asyncio.ensure_future(serve_until_done())


async def _run(args: argparse.Namespace) -> int:
    job = load_job(args.job)
    env = StreamEnvironment(parallelism=args.parallelism, max_parallelism=args.max_parallelism)
    job(env)
    _configure(env, args)
    graph = env.get_job_graph()
    _log(
        f"running {args.job} at parallelism {args.parallelism}: "
        + ", ".join(f"{v.name} x{v.parallelism}" for v in graph.vertices)
    )
    runner = env.create_runner()
    gateway = LocalRunnerGateway(runner, name=args.job, savepoint_dir=args.savepoint_dir)
    printer = None if args.quiet else _ProgressPrinter(runner)
    loop = asyncio.get_running_loop()
    interrupted: list[bool] = []

    def on_signal() -> None:
        interrupted.append(True)
        _log("interrupted: cancelling the job...")
        gateway.request_cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    started = time.monotonic()
    reporter = _AttemptReporter(runner)
    watcher = asyncio.ensure_future(reporter.watch())
    try:
        done = await _serve_and_run(args, gateway, printer)
        await asyncio.wait({done})
    finally:
        watcher.cancel()
        reporter.check()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    elapsed = time.monotonic() - started
    exc = None if done.cancelled() else done.exception()
    if done.cancelled() or isinstance(exc, errors.JobCancelledError | asyncio.CancelledError):
        _log(_end_line("cancelled", runner, elapsed))
        return 130
    if exc is not None:
        _log(_end_line("FAILED", runner, elapsed))
        if runner.checkpoint is not None and runner.result and runner.result.last_checkpoint:
            _log("a new run with the same --checkpoint-dir resumes from the last checkpoint")
        if isinstance(exc, errors.StreamJobError):
            raise exc
        log.debug("the job failed", exc_info=exc)
        raise errors.JobFailedError(
            f"the job failed: {type(exc).__name__}: {exc} (--log-level DEBUG shows the traceback)"
        ) from None
    result = runner.result
    _log(_end_line("stopped" if result and result.savepoint_path else "finished", runner, elapsed))
    return 130 if interrupted else 0


# -- checkpoints and savepoints ------------------------------------------------------------------
def _checkpoints(args: argparse.Namespace) -> int:
    if args.action == "list":
        listing = inspection.list_checkpoints(args.url, job_id=args.job_id)
        print(
            json.dumps(listing, indent=2) if args.json else inspection_text.render_listing(listing)
        )
        return 0
    found = inspection.inspect_checkpoint(args.path)
    print(json.dumps(found, indent=2) if args.json else inspection_text.render_inspection(found))
    return 1 if found["problems"] else 0


async def _savepoint(args: argparse.Namespace, target: str | None) -> int:
    from streamjob.client import JobManagerClient
    from streamjob.jobmanager import dto

    async with JobManagerClient(args.rest) as client:
        job_id = args.job_id
        if job_id is None:
            running = [j for j in await client.jobs() if not j.state.terminal]
            if len(running) != 1:
                listed = ", ".join(f"{j.id} ({j.state.value})" for j in running) or "none"
                raise errors.StreamJobError(
                    f"{args.rest} runs {len(running)} unfinished jobs ({listed}): "
                    "choose one with --job-id"
                )
            job_id = running[0].id
        trigger = await client.trigger_savepoint(job_id, target_dir=target, stop=args.stop)
        _log(f"savepoint {trigger} triggered for job {job_id}" + (" (stop)" if args.stop else ""))
        last_report = [0.0]

        def on_poll(status: dto.SavepointStatus, elapsed: float) -> None:
            if status.status is dto.OperationStatus.IN_PROGRESS and elapsed - last_report[0] >= 1:
                last_report[0] = elapsed
                _log(f"savepoint {trigger} in progress ({elapsed:.0f}s)")

        status = await client.wait_for_savepoint(
            job_id, trigger, poll_s=args.poll_interval, timeout_s=args.timeout, on_poll=on_poll
        )
    if status.status is dto.OperationStatus.COMPLETED:
        _log(f"savepoint completed: {status.location}")
        print(status.location)
        return 0
    raise errors.CheckpointError(f"savepoint {trigger} failed: {status.failure_cause}")


def main(argv: Sequence[str] | None = None) -> int:
    own, job_args = commands.split_job_args(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(own)
    args.job_args = job_args
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "run":
            if args.mini_cluster:
                return commands.run_mini_cluster(args)
            return asyncio.run(_run(args))
        if args.command == "jobmanager":
            return commands.run_jobmanager(args)
        if args.command == "taskmanager":
            return commands.run_taskmanager(args)
        if args.command == "checkpoints":
            return _checkpoints(args)
        if args.command == "operator":
            return _operator(args)
        if args.command == "savepoint":
            target = args.target_dir
            if target and "://" not in target:
                target = os.path.abspath(target)  # the JobManager may run elsewhere
            return asyncio.run(_savepoint(args, target))
    except errors.StreamJobError as exc:
        cause = exc.__cause__
        detail = (
            f"\n  caused by: {cause}" if cause is not None and str(cause) not in str(exc) else ""
        )
        print(f"streamjob: error: {exc}{detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamjob: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
