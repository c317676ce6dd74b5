"""Recovery: snapshot, restore and rescale time for about 1 GB of hashmap keyed state.

The job is a per-user profile: an unbounded generator emits ``(user, i)`` and a
KeyedProcessFunction keeps, per user, ``(events, amount_total, last_seen_ms, last_url)`` in a
ValueState (pickled alone about 95 bytes; about 95 canonical bytes per user, key included, in
format version 2, 129 in version 1). That is the common shape of keyed state in real jobs (a
few counters, a timestamp and a short string per key: sessions, features, fraud profiles) and
the hard case for Python, since a snapshot or restore costs per object, not per byte: bigger
values would mean fewer objects per GB. About 10 million users make 1 GB; the state takes
about 4.5 GB of Python objects.

Legs, each in its own process (clean peak RSS, no heap left over from the previous leg), with
all subtasks of a leg in that one process (the local mini-cluster, on one core):

1. **build** at parallelism 2: run until every user has a profile, take a savepoint while the
   job runs on, then stop-with-savepoint into a local temp directory. Measures, for both, each
   subtask's synchronous part (barrier in to barrier out: what holds the barrier and the task),
   its whole snapshot (barrier in to the last key group serialized: copy-on-write, between
   batches and before records change a key group), its upload (in the upload thread) and the
   savepoint end to end; for the running one, also the records processed meanwhile;
2. **restore** at parallelism 2 from that savepoint;
3. **rescale** to parallelism 3 from the same savepoint.

Restore and rescale are timed from the start of the run (the job built, modules imported) to
the first record processed after the restore, and per subtask (its task's restore plus its
keyed operator's ``open``, which loads the state: the figure a deployment with one process per
subtask would see); the first records are checked to find their user's restored profile.

The size is the bytes the backend's canonical snapshot takes (key groups, sections, entries),
computed from the savepoint's files; the number of users is sized to it from a sample. Usage:
``python bench/bench_recovery.py [GB] [--keys N]`` (default 1.0; ``0.1`` for a smoke test).
Targets (issue 5): restore and rescale under 10 s each, on local storage. Ends with one JSON
line ``{"bench": "recovery", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streamjob import GeneratorSource, StreamEnvironment, errors, keygroups
from streamjob.checkpoint import snapshotting
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.connectors.basic_sinks import DiscardingSink
from streamjob.execution import local_job
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.runtime.operators import keyed
from streamjob.state import HashMapStateBackend, ValueStateDescriptor, canonical

UID = "profile"
BASE_MS = 1_700_000_000_000
URL = "https://shop.example.com/catalog/item-{}?ref=home&utm=bench"
CHECKED_RECORDS = 1_000


class Progress:
    """Shared by the subtasks of one process (they all run on its one event loop)."""

    processed = 0
    highest = [-1, -1]  # the highest index seen from each of the two source splits
    first_at: float | None = None
    found = 0
    missing = 0
    checking = False


def make_source(keys: int) -> GeneratorSource:
    def batch(indices: range) -> list[tuple[str, int]]:
        return [(f"user-{i % keys}", i) for i in indices]

    return GeneratorSource(batch_fn=batch, count=None)


def new_profile(i: int) -> tuple[int, int, int, str]:
    return (1, i % 10_000, BASE_MS + i, URL.format(i))


class UpdateProfile(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.profile = runtime_context.get_state(ValueStateDescriptor(UID))

    def process_element(self, value: Any, ctx: Any) -> Any:
        i = value[1]
        old = self.profile.value()
        if old is None:
            self.profile.update(new_profile(i))
        else:
            self.profile.update((old[0] + 1, old[1] + i % 10_000, BASE_MS + i, old[3]))
        progress = Progress
        if progress.first_at is None:
            progress.first_at = time.perf_counter()
        if progress.checking and progress.processed < CHECKED_RECORDS:
            if old is None:
                progress.missing += 1
            else:
                progress.found += 1
        progress.processed += 1
        parity = i & 1
        if i > progress.highest[parity]:
            progress.highest[parity] = i
        return None


def build_env(
    parallelism: int, keys: int, directory: str, savepoint: str | None
) -> StreamEnvironment:
    env = StreamEnvironment(parallelism=parallelism)
    (
        env.from_source(make_source(keys), source_name="users")
        .key_by(lambda r: r[0])
        .process(UpdateProfile())
        .uid(UID)
        .sink_to(DiscardingSink())
    )
    env.configure_checkpoints(directory=directory, from_savepoint=savepoint)
    return env


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- legs (each runs in a child process) ---------------------------------------------------------
class SnapshotTimes:
    """Each subtask's snapshot timing per checkpoint id, from its acknowledgement, and its
    upload time (instrumentation of the checkpointer: nothing else is changed)."""

    def __init__(self) -> None:
        self.acks: dict[int, list[Any]] = {}
        self.uploads: dict[int, list[float]] = {}
        init = snapshotting.TaskCheckpointer.__init__
        upload = snapshotting.TaskCheckpointer._upload
        acks, uploads = self.acks, self.uploads

        def checkpointer(self: Any, task: Any, **kwargs: Any) -> None:
            acknowledge = kwargs["acknowledge"]

            def acked(checkpoint_id: int, key: Any, snapshot: Any) -> None:
                if snapshot.bytes_written:
                    acks.setdefault(checkpoint_id, []).append(snapshot)
                acknowledge(checkpoint_id, key, snapshot)

            kwargs["acknowledge"] = acked
            init(self, task, **kwargs)

        def timed_upload(self: Any, barrier: Any, prepared: Any) -> Any:
            started = time.perf_counter()
            snapshot = upload(self, barrier, prepared)
            if snapshot.bytes_written:
                elapsed = time.perf_counter() - started
                uploads.setdefault(barrier.checkpoint_id, []).append(elapsed)
            return snapshot

        snapshotting.TaskCheckpointer.__init__ = checkpointer  # type: ignore[method-assign]
        snapshotting.TaskCheckpointer._upload = timed_upload  # type: ignore[method-assign]

    def figures(self, checkpoint_id: int) -> dict[str, Any]:
        acks = sorted(self.acks.get(checkpoint_id, []), key=lambda s: s.subtask)
        return {
            "sync_ms_per_subtask": [round(s.sync_ms, 2) for s in acks],
            "snapshot_s_per_subtask": [round(s.snapshot_ms / 1000, 2) for s in acks],
            "upload_s_per_subtask": [round(s, 2) for s in self.uploads.get(checkpoint_id, [])],
        }


def savepoint_id(path: str) -> int:
    return int(path.rstrip("/").rsplit("-", 1)[1])


def leg_build(keys: int, root: Path) -> dict[str, Any]:
    """Run until every user has a profile, take a savepoint while running, then
    stop-with-savepoint; time their parts."""
    env = build_env(2, keys, str(root / "build-chk"), None)
    times = SnapshotTimes()
    runner = env.create_runner()

    async def drive() -> dict[str, Any]:
        started = time.perf_counter()
        run = asyncio.ensure_future(runner.run())
        while min(Progress.highest) < keys - 2:
            await asyncio.sleep(0.05)
            if run.done():
                run.result()
                raise AssertionError("the job ended before the state was built")
        built = time.perf_counter() - started
        triggered = time.perf_counter()
        before = Progress.processed
        running = await runner.trigger_savepoint(str(root / "savepoints"))
        running_s = time.perf_counter() - triggered
        during = Progress.processed - before
        triggered = time.perf_counter()
        path = await runner.trigger_savepoint(str(root / "savepoints"), stop=True)
        savepoint_s = time.perf_counter() - triggered
        await run
        return {
            "savepoint": path,
            "build_s": round(built, 2),
            "records": Progress.processed,
            "savepoint_s": round(savepoint_s, 2),
            **times.figures(savepoint_id(path)),
            "running": {
                "savepoint_s": round(running_s, 2),
                "records_meanwhile": during,
                **times.figures(savepoint_id(running)),
            },
        }

    result = asyncio.run(drive())
    result["peak_rss_mb"] = round(peak_rss_mb())
    return result


def leg_restore(keys: int, root: Path, savepoint: str, parallelism: int) -> dict[str, Any]:
    """Restore at ``parallelism`` and run to the first record; time each subtask's restore.

    A subtask's restore is its task's ``restore_task`` (reading its key groups; state not yet
    registered is kept as bytes) plus its keyed operator's ``open`` (registering the state
    loads it): what one process per subtask would spend before its first record."""
    env = build_env(parallelism, keys, str(root / f"restore-{parallelism}-chk"), savepoint)
    runner = env.create_runner()
    per_task: dict[int, float] = {}
    restore_task = local_job.restore_task

    def timed_restore(task: Any, meta: Any, storage: Any, faults: Any = None) -> Any:
        started = time.perf_counter()
        stats = restore_task(task, meta, storage, faults)
        if stats.key_groups:
            index = task.subtask_index
            per_task[index] = per_task.get(index, 0.0) + time.perf_counter() - started
        return stats

    local_job.restore_task = timed_restore  # type: ignore[assignment]
    open_operator = keyed.KeyedProcessOperator.open

    def timed_open(self: Any) -> None:
        started = time.perf_counter()
        open_operator(self)
        index = self.ctx.subtask_index
        per_task[index] = per_task.get(index, 0.0) + time.perf_counter() - started

    keyed.KeyedProcessOperator.open = timed_open  # type: ignore[method-assign]
    Progress.checking = True

    async def drive() -> float:
        started = time.perf_counter()
        run = asyncio.ensure_future(runner.run())
        while Progress.processed < CHECKED_RECORDS:
            await asyncio.sleep(0.001)
            if run.done():
                run.result()
                raise AssertionError("the job ended before processing a record")
        assert Progress.first_at is not None
        first_record_s = Progress.first_at - started
        assert runner.executor is not None
        runner.executor.cancel()
        with contextlib.suppress(errors.JobCancelledError):
            await run
        return first_record_s

    first_record_s = asyncio.run(drive())
    result = runner.result
    assert result is not None
    stats = result.attempts[0].restore_stats
    return {
        "parallelism": parallelism,
        "first_record_s": round(first_record_s, 2),
        "restore_s_per_subtask": [round(per_task[i], 2) for i in sorted(per_task)],
        "bytes_read": stats.bytes_read,
        "key_groups": stats.key_groups,
        "checked_found": Progress.found,
        "checked_missing": Progress.missing,
        "peak_rss_mb": round(peak_rss_mb()),
    }


# -- the parent ---------------------------------------------------------------------------------
def bytes_per_key(sample: int = 20_000) -> float:
    """Canonical bytes per user, from a sample snapshotted with the backend of this checkout."""
    backend = HashMapStateBackend(
        max_parallelism=128, key_group_range=keygroups.KeyGroupRange(0, 127)
    )
    state = backend.get_state(ValueStateDescriptor(UID))
    for i in range(sample):
        backend.set_current_key(f"user-{i + 5_000_000}")
        state.update(new_profile(i + 5_000_000))
    total = sum(len(blob) for _, blob in backend.iter_snapshot(range(128)))
    return total / sample


def backend_bytes(savepoint: str) -> tuple[int, int]:
    """(bytes of the backend's key-group blobs, bytes of the savepoint's state files)."""
    meta = CheckpointMetadata.from_bytes(
        Path(savepoint, "_metadata").read_bytes(), location=savepoint
    )
    op = meta.operator(UID)
    assert op is not None
    state = files = 0
    for handle in op.keyed_handles:
        data = Path(savepoint, handle.path).read_bytes()
        files += len(data)
        for offset, length in handle.offsets.values():
            blob = data[offset : offset + length]
            _, sections = canonical.read_key_group(blob)
            own = [(name, body) for name, body in sections if not name.startswith("op/")]
            state += len(canonical.build_key_group(0, own))
        del data
    return state, files


def run_leg(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gb", nargs="?", type=float, default=1.0)
    parser.add_argument("--keys", type=int, default=None)
    parser.add_argument("--leg", choices=["build", "restore"], default=None)
    parser.add_argument("--root", default=None)
    parser.add_argument("--savepoint", default=None)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    if args.leg is not None:
        root = Path(args.root)
        if args.leg == "build":
            result = leg_build(args.keys, root)
        else:
            result = leg_restore(args.keys, root, args.savepoint, args.parallelism)
        print(json.dumps(result))
        sys.stdout.flush()
        os._exit(0)  # skip tearing down GBs of dicts
    per_key = bytes_per_key()
    keys = args.keys or int(args.gb * 1e9 / per_key)
    root = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    print(f"recovery: {keys:,} users x ~{per_key:.0f} canonical bytes (~{args.gb} GB), in {root}")
    print(f"load average before: {load()}")
    try:
        common = ["--keys", str(keys), "--root", str(root)]
        build = run_leg(["--leg", "build", *common])
        savepoint = build["savepoint"]
        state_bytes, file_bytes = backend_bytes(savepoint)
        restore = run_leg(["--leg", "restore", "--savepoint", savepoint, *common])
        rescale = run_leg(
            ["--leg", "restore", "--savepoint", savepoint, "--parallelism", "3", *common]
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    snapshot_s = max(build["snapshot_s_per_subtask"] or [0.0])
    sync_ms = max(build["sync_ms_per_subtask"] or [0.0])
    upload_s = max(build["upload_s_per_subtask"] or [0.0])
    running = build["running"]
    for leg in (restore, rescale):
        assert leg["checked_missing"] == 0, f"restored profiles are missing: {leg}"
    print(
        f"state:     {state_bytes:,} canonical bytes ({state_bytes / keys:.0f} per user); "
        f"savepoint files {file_bytes:,} bytes"
    )
    print(
        f"build:     {build['build_s']:.1f} s for {build['records']:,} records; "
        f"peak RSS {build['peak_rss_mb']:,} MB"
    )
    print(
        f"savepoint while running: {running['savepoint_s']:.2f} s end to end; per subtask: "
        f"barrier in to out {running['sync_ms_per_subtask']} ms, whole snapshot "
        f"{running['snapshot_s_per_subtask']} s, upload {running['upload_s_per_subtask']} s; "
        f"{running['records_meanwhile']:,} records processed meanwhile"
    )
    print(f"stop-with-savepoint: {build['savepoint_s']:.2f} s end to end (trigger to _metadata)")
    print(
        f"  sync part: {sync_ms:.2f} ms (barrier in to barrier out, per subtask "
        f"{build['sync_ms_per_subtask']})"
    )
    print(
        f"  snapshot:  {snapshot_s:.2f} s (barrier in to the last key group serialized, per "
        f"subtask {build['snapshot_s_per_subtask']}; the subtasks share one core)"
    )
    print(
        f"  upload:    {upload_s:.2f} s (per subtask, in parallel: {build['upload_s_per_subtask']})"
    )
    for name, leg in (("restore", restore), ("rescale", rescale)):
        print(
            f"{name}:   {leg['first_record_s']:.2f} s to the first record "
            f"at p={leg['parallelism']} "
            f"(per subtask {leg['restore_s_per_subtask']}); {leg['bytes_read']:,} bytes read; "
            f"peak RSS {leg['peak_rss_mb']:,} MB; {leg['checked_found']} of the first "
            f"{CHECKED_RECORDS} records found their profile"
        )
    print(f"load average after: {load()}")
    print(
        json.dumps(
            {
                "bench": "recovery",
                "state_bytes": state_bytes,
                "keys": keys,
                "savepoint_file_bytes": file_bytes,
                "sync_ms": sync_ms,
                "snapshot_s": round(snapshot_s, 2),
                "upload_s": round(upload_s, 2),
                "savepoint_s": build["savepoint_s"],
                "running_sync_ms": max(running["sync_ms_per_subtask"] or [0.0]),
                "running_snapshot_s": max(running["snapshot_s_per_subtask"] or [0.0]),
                "running_savepoint_s": running["savepoint_s"],
                "running_records_meanwhile": running["records_meanwhile"],
                "restore_s": restore["first_record_s"],
                "restore_s_max_subtask": max(restore["restore_s_per_subtask"] or [0.0]),
                "rescale_s": rescale["first_record_s"],
                "rescale_s_max_subtask": max(rescale["restore_s_per_subtask"] or [0.0]),
                "from_parallelism": 2,
                "to_parallelism": 3,
                "peak_rss_mb": max(
                    build["peak_rss_mb"], restore["peak_rss_mb"], rescale["peak_rss_mb"]
                ),
                "peak_rss_mb_build": build["peak_rss_mb"],
                "peak_rss_mb_restore": max(restore["peak_rss_mb"], rescale["peak_rss_mb"]),
                "load": load(),
            }
        )
    )


if __name__ == "__main__":
    main()
