"""The ``streamjob`` command line: ``streamjob run JOB [--parallelism N]`` and friends.

Progress goes to stderr (records per second, totals), results to stdout. Ctrl-C cancels the
job cleanly (operators are closed, nothing half-written is published by the file sink).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from streamjob import errors
from streamjob.api.environment import StreamEnvironment
from streamjob.jobref import load_job
from streamjob.runtime.local_executor import LocalExecutor, Progress


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamjob",
        description="Stateful, exactly-once stream processing with Flink's model, in Python.",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a job on the local runtime until its input ends")
    run.add_argument("job", help="module:function, path.py:function or path.py")
    run.add_argument("--parallelism", "-p", type=int, default=1)
    run.add_argument("--max-parallelism", type=int, default=None)
    run.add_argument(
        "--progress-interval", type=float, default=2.0, help="seconds between progress lines"
    )
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    return parser


class _ProgressPrinter:
    def __init__(self) -> None:
        self._last: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        last = self._last
        self._last = progress
        dt = progress.elapsed_s - (last.elapsed_s if last else 0.0)
        src = progress.source_records - (last.source_records if last else 0)
        rate = src / dt if dt > 0 else 0.0
        print(
            f"[streamjob] {progress.elapsed_s:7.1f}s  source {progress.source_records:>12,} "
            f"records ({rate:>11,.0f}/s)  processed {progress.records_in:>12,}",
            file=sys.stderr,
            flush=True,
        )


async def _run(args: argparse.Namespace) -> int:
    job = load_job(args.job)
    env = StreamEnvironment(parallelism=args.parallelism, max_parallelism=args.max_parallelism)
    job(env)
    graph = env.get_job_graph()
    print(
        f"[streamjob] running {args.job} at parallelism {args.parallelism}: "
        + ", ".join(f"{v.name} x{v.parallelism}" for v in graph.vertices),
        file=sys.stderr,
    )
    executor = LocalExecutor(graph, env.config)
    loop = asyncio.get_running_loop()
    interrupted = []

    def on_signal() -> None:
        interrupted.append(True)
        print("\n[streamjob] interrupted: cancelling the job...", file=sys.stderr)
        executor.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    printer = None if args.quiet else _ProgressPrinter()
    try:
        result = await executor.run(on_progress=printer, progress_interval_s=args.progress_interval)
    except errors.JobCancelledError:
        print("[streamjob] job cancelled", file=sys.stderr)
        return 130
    if interrupted:
        return 130
    rate = result.source_records / result.duration_s if result.duration_s > 0 else 0.0
    print(
        f"[streamjob] finished in {result.duration_s:.2f}s: {result.source_records:,} source "
        f"records ({rate:,.0f}/s)",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "run":
            return asyncio.run(_run(args))
    except errors.StreamJobError as exc:
        cause = exc.__cause__
        detail = (
            f"\n  caused by: {cause}" if cause is not None and str(cause) not in str(exc) else ""
        )
        print(f"streamjob: error: {exc}{detail}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
