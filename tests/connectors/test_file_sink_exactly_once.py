"""Exactly-once file output under real failures, read back from the finished part files.

The job is ``tests.checkpoint.jobs.keyed_count`` (a rate-limited generator, ``key_by``, a count
per key in ValueState) writing ``(key, n, subtask)`` as JSON lines through :class:`FileSink`,
checkpointing every 50 ms, restarted in-process after a failure. Aspects covered:

* without failures the finished files hold exactly the expected output;
* a failure injected in the sink's task at each named fault point (after snapshot, mid-upload,
  before acknowledgement, during notification) or in the JobManager after ``_metadata``, at
  checkpoint 3 or later: the finished files equal the failure-free output (no duplicates, no
  gaps), every record sits in the file of the subtask that owns its key group, the restore was
  real (checkpoint id > 0, fewer records replayed than the total), and no in-progress upload
  is left behind; at parallelism 1 and 2 on a local directory, 2 on a real SeaweedFS;
* negative control: the at-least-once variant (``exactly_once=False``) under the same fault
  shows duplicates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import FixedDelayRestart
from streamjob.execution.results import JobRunResult
from streamjob.testing import TestingSink, run_local
from tests.checkpoint.jobs import (
    Progress,
    assert_exactly_once,
    assert_keyed_placement,
    committed_pairs,
    expected_pairs,
    keyed_count,
)
from tests.connectors.conftest import SinkLocation

EVENTS = 6000
# events per second: 0.75 s of input locally, 2 s on S3 (its client takes a while to start),
# so that every run sees checkpoint 3 mid-stream even on a loaded machine
RATE = {"local": 8000, "seaweedfs": 3000}
POINTS = ["after_snapshot", "mid_upload", "before_ack", "after_metadata", "during_notify"]
# (where, parallelism): both parallelisms locally, 2 on SeaweedFS (the time budget)
WHERE_AND_P = pytest.mark.parametrize(
    ("sink_location", "p"),
    [
        pytest.param("local", 1, id="local-1"),
        pytest.param("local", 2, id="local-2"),
        pytest.param("seaweedfs", 2, id="seaweedfs-2", marks=pytest.mark.seaweedfs),
    ],
    indirect=["sink_location"],
)


def _fault_at(point: str, min_checkpoint: int = 3) -> FaultInjector:
    """Fail at ``point`` from checkpoint ``min_checkpoint`` on, in the sink's task (the
    JobManager's ``after_metadata`` has no task)."""
    faults = FaultInjector()
    faults.arm(
        point,
        when=lambda ctx: (
            ctx["checkpoint_id"] >= min_checkpoint and "Sink" in ctx.get("task", "Sink")
        ),
    )
    return faults


def _run(
    location: SinkLocation,
    tmp_path: Path,
    p: int,
    faults: FaultInjector | None = None,
    **sink_options: Any,
) -> JobRunResult:
    faults = faults or FaultInjector()
    progress = Progress()
    progress.attach(faults)
    sink = location.file_sink(**sink_options)
    return run_local(
        keyed_count(sink, events=EVENTS, rate=RATE[location.backend], progress=progress),  # type: ignore[arg-type]
        parallelism=p,
        faults=faults,
        checkpoint_dir=str(tmp_path / "chk"),
        checkpoint_interval_ms=50,
        restart=FixedDelayRestart(attempts=3, delay_s=0),
    )


def _read_back(location: SinkLocation) -> TestingSink:
    """The finished part files' rows, in a sink the shared assertions understand."""
    return TestingSink(location.finished_rows())


def _assert_restored(result: JobRunResult) -> None:
    assert len(result.attempts) >= 2, "the job never failed over"
    restored = result.attempts[-1]
    assert restored.restored_checkpoint_id is not None and restored.restored_checkpoint_id > 0
    assert restored.source_records < EVENTS, "the restore replayed everything"


@WHERE_AND_P
def test_without_failures_the_files_hold_the_expected_output(
    sink_location: SinkLocation, tmp_path: Path, p: int
) -> None:
    _run(sink_location, tmp_path, p)
    output = _read_back(sink_location)
    assert_exactly_once(output, EVENTS)
    assert_keyed_placement(output, p)
    assert sink_location.in_progress_uploads() == []


@pytest.mark.parametrize("point", POINTS)
@WHERE_AND_P
def test_a_fault_at_each_point_leaves_exactly_once_files(
    sink_location: SinkLocation, tmp_path: Path, point: str, p: int
) -> None:
    faults = _fault_at(point)
    result = _run(sink_location, tmp_path, p, faults=faults)
    assert faults.fired, f"fault point {point} was never reached: {result}"
    _assert_restored(result)
    output = _read_back(sink_location)
    assert_exactly_once(output, EVENTS)
    assert_keyed_placement(output, p)
    assert sink_location.in_progress_uploads() == [], "an in-progress upload was left behind"


def test_negative_control_the_at_least_once_variant_duplicates(
    sink_location: SinkLocation, tmp_path: Path
) -> None:
    faults = _fault_at("after_snapshot")
    _run(sink_location, tmp_path, 2, faults=faults, exactly_once=False)
    assert faults.fired
    got = committed_pairs(_read_back(sink_location))
    assert any(c > 1 for c in got.values()), "the at-least-once file sink showed no duplicates"
    assert set(got) == set(expected_pairs(EVENTS))
