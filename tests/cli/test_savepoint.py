"""``streamjob savepoint --rest`` against a running ``streamjob run --rest-port 0``.

Aspects covered:
- ``run --rest-port 0`` prints the REST URL and the job id; the REST API answers while it runs;
- ``savepoint --rest URL --target-dir DIR`` (the only running job, found without
  ``--job-id``) prints the location of an intermediate savepoint; the job keeps running;
- ``savepoint --stop`` ends the job (exit 0, "stopped with savepoint"); the savepoint is
  inspectable, and ``run --from-savepoint`` restores it at another parallelism into a new
  checkpoint directory: the keyed counts continue (none from 1) and end at the right totals;
- an unknown job id and an unreachable URL are one-line errors (exit 1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Background, counts, expected_counts, streamjob


def test_savepoint_then_stop_then_restore(
    job_file: Path, tmp_path: Path, background: Callable[..., Background]
) -> None:
    run = background(
        "run",
        str(job_file),
        "-p",
        "2",
        "--checkpoint-dir",
        str(tmp_path / "chk"),
        "--checkpoint-interval",
        "0.1",
        "--rest-port",
        "0",
        "--job-id",
        "served",
        env={"EVENTS": "1000000", "RATE": "2000"},
    )
    url = run.wait_for(r"REST API at (http://127\.0\.0\.1:\d+) .*job id served").group(1)
    sp = tmp_path / "savepoints"
    first = streamjob("savepoint", "--rest", url, "--target-dir", str(sp))
    assert first.returncode == 0, first.stderr
    intermediate = Path(first.stdout.strip())
    assert intermediate.parent == sp and (intermediate / "_metadata").is_file()
    assert "savepoint completed" in first.stderr and run.process.poll() is None
    stopped = streamjob(
        "savepoint", "--rest", url, "--job-id", "served", "--target-dir", str(sp), "--stop"
    )
    assert stopped.returncode == 0, stopped.stderr
    final = Path(stopped.stdout.strip())
    assert run.finish() == 0, "".join(run.stderr)
    assert f"stopped with savepoint {final}" in "".join(run.stderr)
    assert final != intermediate and (final / "_metadata").is_file()

    inspected = streamjob("checkpoints", "inspect", str(final), "--json")
    assert inspected.returncode == 0, inspected.stderr
    described = json.loads(inspected.stdout)
    assert described["kind"] == "savepoint" and described["job_id"] == "served"
    positions = {
        p["split"]: p["position"]
        for op in described["operators"]
        for p in op.get("source_positions", [])
    }
    assert sum(positions.values()) > 0

    events = sum(positions.values()) + 700
    resumed = streamjob(
        "run",
        str(job_file),
        "-p",
        "3",
        "--checkpoint-dir",
        str(tmp_path / "chk-2"),
        "--from-savepoint",
        str(final),
        "--job-id",
        "resumed",
        env={"EVENTS": str(events), "RATE": "0"},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(rf"restored checkpoint \d+ from {re.escape(str(final))}", resumed.stderr)
    after = counts(resumed.stdout)
    # the counts continue from the savepoint's state (at parallelism 3) up to the totals
    assert after and all(min(ns) > 1 for ns in after.values())
    assert {key: max(ns) for key, ns in after.items()} == expected_counts(events)


def test_savepoint_errors(
    job_file: Path, tmp_path: Path, background: Callable[..., Background]
) -> None:
    run = background(
        "run", str(job_file), "--rest-port", "0", env={"EVENTS": "1000000", "RATE": "500"}
    )
    url = run.wait_for(r"REST API at (http://127\.0\.0\.1:\d+)").group(1)
    unknown = streamjob("savepoint", "--rest", url, "--job-id", "nope", "--target-dir", "x")
    assert unknown.returncode == 1 and "404" in unknown.stderr and "not found" in unknown.stderr
    no_checkpoints = streamjob("savepoint", "--rest", url, "--target-dir", str(tmp_path))
    assert no_checkpoints.returncode == 1 and "--checkpoint-dir" in no_checkpoints.stderr
    run.interrupt()
    assert run.finish() == 130
    gone = streamjob("savepoint", "--rest", url, "--target-dir", str(tmp_path))
    assert gone.returncode == 1 and "cannot reach the JobManager REST API" in gone.stderr
    assert "Traceback" not in gone.stderr
