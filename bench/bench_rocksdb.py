"""RocksDB backend: throughput, incremental checkpoints, restore and rescale with >= 1 GB of state.

One keyed operator (uid ``count``) holds, in RocksDB, a 1 KiB profile per user (``profile``:
incompressible bytes, so 1 GB of state is about 1 GB of SST files) next to W1's per-key counts.
Checkpoints go to a local directory; the databases live in local temp directories. Legs, each
in its own process (clean timing and memory), on the same checkpoint directory, in order:

1. **build** (parallelism 2): write every profile, then the final checkpoint (a full upload);
2. **incremental** (parallelism 2): restore, change 1 % of the profiles, end: the final
   checkpoint is incremental; its duration (trigger to ``_metadata``) and the bytes it uploaded
   (target: under 2 s);
3. **restore** at parallelism 2 and **rescale** to 3: time to the first record processed after
   the restore, and the restore of each subtask (download, then adopt the database with the
   largest overlap, ``delete_range`` the rest, ingest the others' key groups through new SST
   files) — what one pod per subtask would see (targets: under 10 s each);
4. **W1** (parallelism 1, so a 2 -> 1 restore first): W1's keyed running count (100,000 Zipf
   keys, ``bench/workloads.py``) on this operator, rate from its first record to its last
   (target: at least 200,000 events/s; RocksDB from Python tops out near 300,000); **W1
   uniform**: the same over every user (the working set is 10x the write-back cache, so most
   reads go to RocksDB); **W3**: W1 with a checkpoint every second.

Usage: ``python bench/bench_rocksdb.py [GB]`` (default 1.0; ``0.05`` for a smoke run).
Ends with one JSON line ``{"bench": "rocksdb", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workloads import TABLE, load

from streamjob import GeneratorSource, StreamEnvironment, errors
from streamjob.connectors.basic_sinks import DiscardingSink
from streamjob.execution import local_job
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import BytesSerializer, ValueStateDescriptor
from streamjob.storage.counting import CountingStorage

VALUE_BYTES = 1024
POOL = [random.Random(seed).randbytes(VALUE_BYTES) for seed in range(4096)]
W1_EVENTS = 2_000_000
JOB_ID = "bench-rocksdb"
NO_PERIODIC_MS = 3_600_000


class Marks:
    """Timestamps the keyed function leaves for the leg (one process, one event loop)."""

    first: float | None = None
    last: float | None = None
    seen = 0
    target = 0


class Profiles(KeyedProcessFunction):
    """Stores the record's profile, or (W1) counts per key; marks the first and last record."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.profile = runtime_context.get_state(
            ValueStateDescriptor("profile", serializer=BytesSerializer())
        )
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        marks = Marks
        if marks.first is None:
            marks.first = time.perf_counter()
        if value[1] is None:
            n = (self.count.value() or 0) + 1
            self.count.update(n)
        else:
            self.profile.update(value[1])
        marks.seen += 1
        if marks.seen == marks.target:
            marks.last = time.perf_counter()
        return None


def profile_source(keys: int, version: int, step: int = 1) -> GeneratorSource:
    def batch(indices: range) -> list[tuple[str, bytes]]:
        return [(f"user-{i * step}", POOL[(i * step + version) % len(POOL)]) for i in indices]

    return GeneratorSource(batch_fn=batch, count=keys // step)


def w1_source(events: int) -> GeneratorSource:
    table = [(key, None) for key, _ in TABLE]

    def batch(indices: range) -> list[tuple[str, None]]:
        n = len(table)
        return [table[i % n] for i in indices]

    return GeneratorSource(batch_fn=batch, count=events)


def uniform_source(events: int, keys: int) -> GeneratorSource:
    rng = random.Random(7)
    table = [(f"user-{rng.randrange(keys)}", None) for _ in range(1 << 20)]

    def batch(indices: range) -> list[tuple[str, None]]:
        n = len(table)
        return [table[i % n] for i in indices]

    return GeneratorSource(batch_fn=batch, count=events)


def endless_w1() -> GeneratorSource:
    table = [(key, None) for key, _ in TABLE]
    return GeneratorSource(batch_fn=lambda r: [table[i % len(table)] for i in r], count=None)


def build_env(
    root: Path, parallelism: int, source: GeneratorSource, source_uid: str, **cfg: Any
) -> StreamEnvironment:
    env = StreamEnvironment(parallelism=parallelism)
    env.config.state_backend = "rocksdb"
    env.config.job_config["state_dir"] = str(root / "db")
    (
        env.from_source(source, source_name=source_uid)
        .uid(source_uid)
        .key_by(lambda r: r[0])
        .process(Profiles())
        .uid("count")
        .sink_to(DiscardingSink())
        .uid("sink")
    )
    env.configure_checkpoints(
        directory=str(root / "chk"),
        job_id=JOB_ID,
        interval_ms=cfg.pop("interval_ms", NO_PERIODIC_MS),
        allow_non_restored_state=True,
        **cfg,
    )
    return env


class Counted:
    """Wraps the job's checkpoint storage in a byte counter (``wrap_storage``)."""

    def __init__(self) -> None:
        self.storage: CountingStorage | None = None

    def __call__(self, storage: Any) -> CountingStorage:
        self.storage = CountingStorage(storage)
        return self.storage

    @property
    def bytes_written(self) -> int:
        assert self.storage is not None
        return self.storage.bytes_written


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def timed_restores() -> list[float]:
    """Patch the runner's restore to time each subtask's (as bench_recovery does)."""
    per_task: list[float] = []
    restore_task = local_job.restore_task

    def timed(task: Any, meta: Any, storage: Any, faults: Any = None) -> Any:
        started = time.perf_counter()
        stats = restore_task(task, meta, storage, faults)
        if stats.native_bases or stats.key_groups:
            per_task.append(round(time.perf_counter() - started, 2))
        return stats

    local_job.restore_task = timed  # type: ignore[assignment]
    return per_task


# -- legs (each runs in a child process) ---------------------------------------------------------
def leg_build(root: Path, keys: int) -> dict[str, Any]:
    env = build_env(root, 2, profile_source(keys, 0), "profiles")
    Marks.target = keys
    counted = Counted()
    runner = env.create_runner(wrap_storage=counted)
    started = time.perf_counter()
    result = asyncio.run(runner.run())
    final = result.checkpoints[-1]
    return {
        "build_s": round(time.perf_counter() - started, 2),
        "write_s": round((Marks.last or 0) - (Marks.first or 0), 2),
        "checkpoint_s": round(final.duration_ms / 1000, 2),
        "checkpoint_bytes": final.size_bytes,
        "uploaded_bytes": counted.bytes_written,
        "peak_rss_mb": peak_rss_mb(),
    }


def leg_incremental(root: Path, keys: int) -> dict[str, Any]:
    env = build_env(root, 2, profile_source(keys, 1, step=100), "changes")
    Marks.target = keys // 100
    counted = Counted()
    runner = env.create_runner(wrap_storage=counted)
    per_task = timed_restores()
    result = asyncio.run(runner.run())
    final = result.checkpoints[-1]
    written = counted.bytes_written
    return {
        "checkpoint_s": round(final.duration_ms / 1000, 2),
        "checkpoint_bytes": final.size_bytes,
        "uploaded_bytes": written,
        "restore_s_per_subtask": per_task,
        "changed_keys": keys // 100,
        "peak_rss_mb": peak_rss_mb(),
    }


def leg_restore(root: Path, parallelism: int) -> dict[str, Any]:
    env = build_env(root, parallelism, endless_w1(), "w1-endless")
    runner = env.create_runner()
    per_task = timed_restores()

    async def drive() -> float:
        started = time.perf_counter()
        run = asyncio.ensure_future(runner.run())
        while Marks.first is None:
            await asyncio.sleep(0.001)
            if run.done():
                run.result()
                raise AssertionError("the job ended before processing a record")
        first = Marks.first - started
        assert runner.executor is not None
        runner.executor.cancel()
        with contextlib.suppress(errors.JobCancelledError):
            await run
        return first

    first_record_s = asyncio.run(drive())
    assert runner.result is not None
    stats = runner.result.attempts[0].restore_stats
    return {
        "parallelism": parallelism,
        "first_record_s": round(first_record_s, 2),
        "restore_s_per_subtask": per_task,
        "bytes_read": stats.bytes_read,
        "peak_rss_mb": peak_rss_mb(),
    }


def leg_w1(root: Path, keys: int, kind: str) -> dict[str, Any]:
    source = uniform_source(W1_EVENTS, keys) if kind == "uniform" else w1_source(W1_EVENTS)
    interval = 1_000 if kind == "w3" else NO_PERIODIC_MS
    env = build_env(root, 1, source, f"w1-{kind}", interval_ms=interval)
    Marks.target = W1_EVENTS
    runner = env.create_runner()
    per_task = timed_restores()
    sync_ms: list[float] = []
    acknowledge = runner._on_ack

    def on_ack(checkpoint_id: int, task: tuple[int, int], snapshot: Any) -> None:
        sync_ms.append(snapshot.sync_ms)
        acknowledge(checkpoint_id, task, snapshot)

    runner._on_ack = on_ack  # type: ignore[method-assign]
    result = asyncio.run(runner.run())
    assert Marks.first is not None and Marks.last is not None
    checkpoints = list(result.checkpoints)
    durations = [c.duration_ms for c in checkpoints[:-1]] or [c.duration_ms for c in checkpoints]
    return {
        "events_per_s": round(W1_EVENTS / (Marks.last - Marks.first)),
        "restore_s_per_subtask": per_task,
        "checkpoints": len(checkpoints),
        "checkpoint_ms_median": statistics.median(durations) if durations else 0,
        "checkpoint_ms_max": max(durations) if durations else 0,
        "sync_ms_median": round(statistics.median(sync_ms), 1) if sync_ms else 0,
        "sync_ms_max": round(max(sync_ms), 1) if sync_ms else 0,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- the parent ---------------------------------------------------------------------------------
def run_leg(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    out.check_returncode()
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gb", nargs="?", type=float, default=1.0)
    parser.add_argument("--leg", default=None)
    parser.add_argument("--root", default=None)
    parser.add_argument("--keys", type=int, default=None)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    if args.leg is not None:
        root = Path(args.root)
        legs = {
            "build": lambda: leg_build(root, args.keys),
            "incremental": lambda: leg_incremental(root, args.keys),
            "restore": lambda: leg_restore(root, args.parallelism),
            "w1": lambda: leg_w1(root, args.keys, "zipf"),
            "uniform": lambda: leg_w1(root, args.keys, "uniform"),
            "w3": lambda: leg_w1(root, args.keys, "w3"),
        }
        print(json.dumps(legs[args.leg]()))
        sys.stdout.flush()
        os._exit(0)
    keys = args.keys or int(args.gb * 1e9 / VALUE_BYTES)
    root = Path(tempfile.mkdtemp(prefix="bench-rocksdb-"))
    print(f"rocksdb: {keys:,} users x {VALUE_BYTES} B profiles (~{args.gb} GB), in {root}")
    print(f"load average before: {load()}")
    try:
        common = ["--root", str(root), "--keys", str(keys)]
        build = run_leg(["--leg", "build", *common])
        checkpoint_bytes = build["checkpoint_bytes"]
        incremental = run_leg(["--leg", "incremental", *common])
        restore = run_leg(["--leg", "restore", "--parallelism", "2", *common])
        rescale = run_leg(["--leg", "restore", "--parallelism", "3", *common])
        w1 = run_leg(["--leg", "w1", *common])
        uniform = run_leg(["--leg", "uniform", *common])
        w3 = run_leg(["--leg", "w3", *common])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = incremental["uploaded_bytes"] / max(1, build["uploaded_bytes"])
    print(
        f"build:        {build['write_s']:.1f} s writing {keys:,} profiles at p=2, then a full "
        f"checkpoint of {checkpoint_bytes:,} bytes in {build['checkpoint_s']:.2f} s"
    )
    print(
        f"incremental:  {incremental['checkpoint_s']:.2f} s after changing "
        f"{incremental['changed_keys']:,} profiles (1 %); uploaded "
        f"{incremental['uploaded_bytes']:,} bytes = {ratio:.1%} of the full upload"
    )
    for name, leg in (("restore", restore), ("rescale", rescale)):
        print(
            f"{name}:      {leg['first_record_s']:.2f} s to the first record at "
            f"p={leg['parallelism']} (per subtask {leg['restore_s_per_subtask']} s; "
            f"{leg['bytes_read']:,} bytes read); peak RSS {leg['peak_rss_mb']} MB"
        )
    for name, leg in (("W1", w1), ("W1 uniform", uniform), ("W3", w3)):
        print(
            f"{name + ':':13} {leg['events_per_s']:>9,} events/s at p=1 "
            f"(restore {leg['restore_s_per_subtask']} s; checkpoints {leg['checkpoints']}, "
            f"median {leg['checkpoint_ms_median']} ms, sync median {leg['sync_ms_median']} ms)"
        )
    print(f"load average after: {load()}")
    print(
        json.dumps(
            {
                "bench": "rocksdb",
                "state_bytes": checkpoint_bytes,
                "keys": keys,
                "w1_events_per_s": w1["events_per_s"],
                "w1_uniform_events_per_s": uniform["events_per_s"],
                "w3_events_per_s": w3["events_per_s"],
                "w3_checkpoints": w3["checkpoints"],
                "w3_checkpoint_ms_median": w3["checkpoint_ms_median"],
                "w3_sync_ms_median": w3["sync_ms_median"],
                "full_checkpoint_s": build["checkpoint_s"],
                "full_uploaded_bytes": build["uploaded_bytes"],
                "incremental_checkpoint_s": incremental["checkpoint_s"],
                "incremental_uploaded_bytes": incremental["uploaded_bytes"],
                "incremental_ratio": round(ratio, 4),
                "restore_s": restore["first_record_s"],
                "restore_s_max_subtask": max(restore["restore_s_per_subtask"] or [0.0]),
                "rescale_s": rescale["first_record_s"],
                "rescale_s_max_subtask": max(rescale["restore_s_per_subtask"] or [0.0]),
                "from_parallelism": 2,
                "to_parallelism": 3,
                "peak_rss_mb": max(
                    leg["peak_rss_mb"] for leg in (build, incremental, restore, rescale, w1, w3)
                ),
                "load": load(),
            }
        )
    )


if __name__ == "__main__":
    main()
