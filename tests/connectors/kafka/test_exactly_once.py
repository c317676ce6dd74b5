"""Exactly-once from topic to topic through crashes, read back with ``read_committed``.

The job is ``tests.connectors.kafka.jobs.keyed_count_job`` (a bounded KafkaSource, a keyed
count, an exactly-once KafkaSink), checkpointing every 50 ms and restarted in-process after a
failure. Aspects covered:

* without failures, the output topic holds exactly the expected output (p = 1 and 2);
* a failure at a named fault point, from checkpoint 3 on: in the JobManager after ``_metadata``
  and before the notification (the hard case: the restored job finishes the pre-committed
  transactions with ``EndTxn``, counted here, none lost), in the sink's task after the snapshot
  and during the notification; and crashes at random records after two checkpoints: the output
  equals the failure-free output, every record comes from the subtask owning its key group,
  and the restore was real (checkpoint id > 0, fewer records replayed than the total);
* rescaling through a crash (before a checkpoint's acknowledgement), 2 -> 1 and 1 -> 2: the
  transactions the old parallelism left open are committed or aborted (reading
  ``read_committed`` would otherwise stall at them) and nothing is lost;
* negative controls: the at-least-once sink under the same crash duplicates; and a restore that
  did what librdkafka's ``init_transactions()`` does to the pending transaction (abort it)
  loses the checkpoint's records, so the ``after_metadata`` test can fail.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamjob import errors
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import FixedDelayRestart, NoRestart
from streamjob.connectors.kafka import DeliveryGuarantee, transactions
from streamjob.execution.results import JobRunResult
from streamjob.testing import TestingSink, run_local
from tests.checkpoint.jobs import Progress, assert_exactly_once, assert_keyed_placement
from tests.connectors.kafka.conftest import unique
from tests.connectors.kafka.jobs import (
    fill_input,
    keyed_count_job,
    output_pairs,
    output_rows,
    output_sink,
)

EVENTS = 3000
PARTITIONS = 3


@pytest.fixture
def topics(bootstrap: str, topic: Callable[..., str]) -> tuple[str, str]:
    source, out = topic(PARTITIONS, "in"), topic(2, "out")
    fill_input(bootstrap, source, EVENTS, PARTITIONS)
    return source, out


@pytest.fixture
def resumed_commits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every commit of a restored transaction by the wire-protocol client, and its outcome."""
    calls: list[tuple[str, bool]] = []
    original = transactions.Coordinators.commit

    def spy(self: transactions.Coordinators, tid: str, pid: int, epoch: int) -> bool:
        ok = original(self, tid, pid, epoch)
        calls.append((tid, ok))
        return ok

    monkeypatch.setattr(transactions.Coordinators, "commit", spy)
    return calls


def _run(
    bootstrap: str,
    topics: tuple[str, str],
    p: int,
    tmp_path: Path,
    *,
    faults: FaultInjector | None = None,
    crash_at: int | None = None,
    guarantee: DeliveryGuarantee = DeliveryGuarantee.EXACTLY_ONCE,
    prefix: str | None = None,
    restart: Any = None,
) -> JobRunResult:
    faults = faults or FaultInjector()
    progress = Progress()
    progress.attach(faults)
    sink = output_sink(
        bootstrap,
        topics[1],
        delivery_guarantee=guarantee,
        transactional_id_prefix=prefix or unique("eos"),
    )
    return run_local(
        keyed_count_job(bootstrap, topics[0], sink, crash_at=crash_at, progress=progress),
        parallelism=p,
        batch_size=64,  # small batches: the throttle's sleeps leave room for barriers
        faults=faults,
        checkpoint_dir=str(tmp_path / "chk"),
        checkpoint_interval_ms=50,
        restart=restart or FixedDelayRestart(attempts=3, delay_s=0),
    )


def _fault_at(point: str, min_checkpoint: int = 3) -> FaultInjector:
    faults = FaultInjector()
    faults.arm(
        point,
        when=lambda ctx: (
            ctx["checkpoint_id"] >= min_checkpoint and "Sink" in ctx.get("task", "Sink")
        ),
    )
    return faults


def _assert_output(bootstrap: str, topic: str, p: int | None) -> None:
    output = TestingSink(output_rows(bootstrap, topic))
    assert_exactly_once(output, EVENTS)
    if p is not None:
        assert_keyed_placement(output, p)


def _assert_restored(result: JobRunResult) -> None:
    assert len(result.attempts) >= 2, "the job never failed over"
    restored = result.attempts[-1]
    assert restored.restored_checkpoint_id is not None and restored.restored_checkpoint_id > 0
    assert restored.source_records < EVENTS, "the restore replayed everything"


@pytest.mark.parametrize("p", [1, 2])
def test_without_failures_the_output_is_exact(
    bootstrap: str, topics: tuple[str, str], tmp_path: Path, p: int
) -> None:
    result = _run(bootstrap, topics, p, tmp_path)
    assert len(result.checkpoints) >= 3, "no checkpoint mid-stream: the test proves little"
    _assert_output(bootstrap, topics[1], p)


@pytest.mark.parametrize(
    ("point", "p"),
    [("after_metadata", 1), ("after_metadata", 2), ("after_snapshot", 2), ("during_notify", 2)],
)
def test_a_fault_at_a_named_point_leaves_exactly_once_output(
    bootstrap: str,
    topics: tuple[str, str],
    tmp_path: Path,
    point: str,
    p: int,
    resumed_commits: list[tuple[str, bool]],
) -> None:
    faults = _fault_at(point)
    result = _run(bootstrap, topics, p, tmp_path, faults=faults)
    assert faults.fired, f"fault point {point} was never reached: {result}"
    _assert_restored(result)
    _assert_output(bootstrap, topics[1], p)
    assert all(ok for _, ok in resumed_commits), f"transactions lost: {resumed_commits}"
    if point == "after_metadata":
        assert resumed_commits, "the restore finished no pre-committed transaction"


@pytest.mark.parametrize("seed", [1, 2])
def test_crashes_at_random_records(
    bootstrap: str, topics: tuple[str, str], tmp_path: Path, seed: int
) -> None:
    crash_at = random.Random(seed).randrange(EVENTS // 10, EVENTS * 9 // 10)
    result = _run(bootstrap, topics, 2, tmp_path, crash_at=crash_at)
    _assert_restored(result)
    _assert_output(bootstrap, topics[1], 2)


@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 2)])
def test_rescaling_through_a_crash_aborts_the_old_transactions(
    bootstrap: str, topics: tuple[str, str], tmp_path: Path, before: int, after: int
) -> None:
    prefix = unique("eos")
    # before the acknowledgement: the checkpoint's transactions are pre-committed and open,
    # and no completed checkpoint holds them
    with pytest.raises(errors.JobFailedError, match="injected fault"):
        _run(
            bootstrap,
            topics,
            before,
            tmp_path,
            faults=_fault_at("before_ack"),
            prefix=prefix,
            restart=NoRestart(),
        )
    coordinators = transactions.Coordinators(bootstrap, timeout_s=10, client_id="test")
    left_open = [
        f"{prefix}-{s}-{n}"
        for s in range(before)
        for n in range(200)
        if (d := coordinators.describe(f"{prefix}-{s}-{n}")) is not None and d.state == "Ongoing"
    ]
    assert left_open, "the crash left no transaction open: nothing to abort"
    result = _run(bootstrap, topics, after, tmp_path, prefix=prefix)
    assert result.attempts[0].restored_checkpoint_id
    for tid in left_open:
        described = coordinators.describe(tid)
        assert described is not None and described.state != "Ongoing", f"{tid} still open"
    coordinators.close()
    _assert_output(bootstrap, topics[1], None)


def test_negative_control_at_least_once_duplicates(
    bootstrap: str, topics: tuple[str, str], tmp_path: Path
) -> None:
    faults = _fault_at("after_snapshot")
    _run(bootstrap, topics, 2, tmp_path, faults=faults, guarantee=DeliveryGuarantee.AT_LEAST_ONCE)
    assert faults.fired
    got = output_pairs(bootstrap, topics[1])
    assert any(c > 1 for c in got.values()), "the at-least-once sink showed no duplicates"


def test_negative_control_a_restore_that_aborts_the_pending_transaction_loses_records(
    bootstrap: str, topics: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What librdkafka's init_transactions() does to a restored pending transaction."""

    def abort_instead(self: transactions.Coordinators, tid: str, pid: int, epoch: int) -> bool:
        self.abort_lingering(tid, 60_000)
        return True

    monkeypatch.setattr(transactions.Coordinators, "commit", abort_instead)
    faults = _fault_at("after_metadata")
    _run(bootstrap, topics, 2, tmp_path, faults=faults)
    assert faults.fired
    with pytest.raises(AssertionError, match="missing outputs"):
        _assert_output(bootstrap, topics[1], 2)
