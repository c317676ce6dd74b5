"""The two-phase-commit writer's protocol, against a fake external system (no runtime).

Aspects covered:

* the happy path: pre-commit at the barrier, commit on notification of checkpoints <= n only,
  every pending transaction in each snapshot, an aborted checkpoint's transactions carried
  into the next one; snapshots are JSON;
* misuse raises: use before ``initialize``, ``initialize`` twice, use after ``close``,
  decreasing checkpoint ids, and each wrong transaction transition;
* an empty transaction is never stored or committed;
* without checkpointing ``finish`` commits; with it the final checkpoint does;
* ``close`` aborts the open transaction only, never a pre-committed one;
* a writer commits only its own attempt's transactions on notification; restored ones are
  committed at start, each by exactly one writer, after rescaling 2 -> 3 and 3 -> 1;
* ``recover_and_cleanup`` runs in writer 0 only, with every restored transaction, and only
  when restoring or failing over.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from streamjob.connectors.sink import SinkContext
from streamjob.connectors.two_phase import (
    PendingTransaction,
    Transaction,
    TransactionState,
    TransactionStateError,
    TwoPhaseCommitSinkWriter,
)


class FakeSystem:
    """The external system: what was committed (idempotent by id), aborted, cleaned up."""

    def __init__(self) -> None:
        self.visible: dict[str, list[Any]] = {}
        self.commit_calls: Counter[str] = Counter()
        self.aborted: list[str] = []
        self.cleanups: list[tuple[int, list[str]]] = []

    def records(self) -> list[Any]:
        return [r for txn in sorted(self.visible) for r in self.visible[txn]]


class FakeWriter(TwoPhaseCommitSinkWriter[dict[str, Any]]):
    def __init__(self, system: FakeSystem, context: SinkContext) -> None:
        super().__init__(context)
        self.system = system

    def begin_transaction(self, transaction_id: str) -> dict[str, Any]:
        return {"id": transaction_id, "records": []}

    def write(self, transaction: dict[str, Any], records: list[Any], timestamps: Any) -> None:
        transaction["records"].extend(records)

    def pre_commit(self, transaction: dict[str, Any]) -> dict[str, Any] | None:
        return dict(transaction) if transaction["records"] else None

    def commit(self, descriptor: dict[str, Any]) -> None:
        self.system.commit_calls[descriptor["id"]] += 1
        self.system.visible.setdefault(descriptor["id"], list(descriptor["records"]))

    def abort(self, transaction: dict[str, Any]) -> None:
        self.system.aborted.append(transaction["id"])

    def recover_and_cleanup(self, restored: list[PendingTransaction]) -> None:
        self.system.cleanups.append(
            (self.context.subtask_index, [p.transaction_id for p in restored])
        )


def make_writer(
    system: FakeSystem,
    *,
    subtask: int = 0,
    parallelism: int = 1,
    attempt: int = 0,
    checkpointing: bool = True,
    restored: list[Any] | None = None,
) -> FakeWriter:
    context = SinkContext(
        subtask,
        parallelism,
        attempt,
        checkpointing,
        restored_state=restored,
        attempt_id=f"run-{attempt}",
    )
    writer = FakeWriter(system, context)
    writer.initialize()
    return writer


def test_commit_on_notification_of_checkpoints_up_to_n() -> None:
    system = FakeSystem()
    writer = make_writer(system)
    writer.write_batch(["a", "b"], None)
    first = writer.snapshot_state(1)
    writer.write_batch(["c"], None)
    second = writer.snapshot_state(2)
    assert [p["checkpoint"] for p in first] == [1]
    assert [p["checkpoint"] for p in second] == [1, 2]  # every pending one, each time
    assert json.loads(json.dumps(second)) == second
    assert system.records() == []

    writer.notify_checkpoint_complete(1)
    assert system.records() == ["a", "b"]
    assert [p.checkpoint_id for p in writer.pending_transactions] == [2]
    writer.notify_checkpoint_complete(2)
    assert system.records() == ["a", "b", "c"]
    assert writer.pending_transactions == ()


def test_an_aborted_checkpoint_carries_its_transactions_into_the_next() -> None:
    system = FakeSystem()
    writer = make_writer(system)
    writer.write_batch(["a"], None)
    writer.snapshot_state(1)
    writer.notify_checkpoint_aborted(1)
    writer.write_batch(["b"], None)
    assert [p["checkpoint"] for p in writer.snapshot_state(2)] == [1, 2]
    writer.notify_checkpoint_complete(2)
    assert system.records() == ["a", "b"]


def test_misuse_of_the_writer_raises() -> None:
    system = FakeSystem()
    context = SinkContext(0, 1, checkpointing=True, attempt_id="x")
    fresh = FakeWriter(system, context)
    with pytest.raises(TransactionStateError, match="not initialized"):
        fresh.write_batch(["a"], None)
    fresh.initialize()
    with pytest.raises(TransactionStateError, match="twice"):
        fresh.initialize()
    fresh.write_batch(["a"], None)
    fresh.snapshot_state(5)
    with pytest.raises(TransactionStateError, match="must increase"):
        fresh.snapshot_state(5)
    fresh.close()
    for call in (
        lambda: fresh.write_batch(["b"], None),
        lambda: fresh.snapshot_state(6),
        lambda: fresh.notify_checkpoint_complete(5),
    ):
        with pytest.raises(TransactionStateError, match="closed"):
            call()
    fresh.close()  # closing twice is fine


@pytest.mark.parametrize(
    ("state", "operation"),
    [
        (TransactionState.OPEN, "commit"),
        (TransactionState.PRE_COMMITTED, "write"),
        (TransactionState.PRE_COMMITTED, "pre_commit"),
        (TransactionState.PRE_COMMITTED, "abort"),
        (TransactionState.COMMITTED, "commit"),
        (TransactionState.COMMITTED, "abort"),
        (TransactionState.ABORTED, "write"),
        (TransactionState.ABORTED, "commit"),
    ],
)
def test_a_transaction_rejects_a_wrong_transition(state: TransactionState, operation: str) -> None:
    transaction = Transaction("t-1", handle=None, state=state)
    with pytest.raises(TransactionStateError, match=f"cannot {operation} transaction t-1"):
        transaction.require(operation)


def test_an_empty_transaction_is_neither_stored_nor_committed() -> None:
    system = FakeSystem()
    writer = make_writer(system)
    assert writer.snapshot_state(1) == []
    writer.notify_checkpoint_complete(1)
    assert system.commit_calls == Counter()


def test_finish_commits_without_checkpointing_only() -> None:
    system = FakeSystem()
    plain = make_writer(system, checkpointing=False)
    plain.write_batch(["a"], None)
    plain.finish()
    assert system.records() == ["a"]

    other = FakeSystem()
    checkpointed = make_writer(other)
    checkpointed.write_batch(["b"], None)
    checkpointed.finish()
    assert other.records() == []  # FLIP-147: the final checkpoint commits it
    checkpointed.snapshot_state(7)
    checkpointed.notify_checkpoint_complete(7)
    assert other.records() == ["b"]


def test_close_aborts_the_open_transaction_but_keeps_pre_committed_ones() -> None:
    system = FakeSystem()
    writer = make_writer(system)
    writer.write_batch(["a"], None)
    writer.snapshot_state(1)
    writer.write_batch(["b"], None)
    open_id = writer.current_transaction.transaction_id
    writer.close()  # a failure: checkpoint 1 may have completed, its notification lost
    assert system.aborted == [open_id]
    assert [p.checkpoint_id for p in writer.pending_transactions] == [1]
    assert system.commit_calls == Counter()


def test_only_the_own_attempts_transactions_are_committed_on_notification() -> None:
    system = FakeSystem()
    old = make_writer(system, subtask=0, parallelism=2, attempt=0)
    old.write_batch(["old"], None)
    state = old.snapshot_state(1)  # checkpoint 1 completes; its notification never arrives
    writers = [
        make_writer(system, subtask=s, parallelism=2, attempt=1, restored=state) for s in (0, 1)
    ]
    assert system.commit_calls == Counter({state[0]["id"]: 1})  # at start, by one writer
    system.commit_calls.clear()

    snapshots = []
    for subtask, writer in enumerate(writers):
        writer.write_batch([f"new-{subtask}"], None)
        snapshots.append(writer.snapshot_state(2))
    assert [p["attempt"] for p in snapshots[1]] == ["run-1"]  # restored ones are not its own
    writers[1].notify_checkpoint_complete(2)
    assert set(system.commit_calls) == {p["id"] for p in snapshots[1]}
    assert system.records() == ["old", "new-1"]


def _run_old_attempt(system: FakeSystem, parallelism: int) -> list[Any]:
    """Each old writer pre-commits three checkpoints; only the last completes (union state)."""
    union: list[Any] = []
    for subtask in range(parallelism):
        writer = make_writer(system, subtask=subtask, parallelism=parallelism, attempt=0)
        state: list[Any] = []
        for checkpoint in (1, 2, 3):
            writer.write_batch([f"s{subtask}-c{checkpoint}"], None)
            state = writer.snapshot_state(checkpoint)
        union.extend(state)
    return union


@pytest.mark.parametrize(("old", "new"), [(2, 3), (3, 1), (1, 2), (2, 2)])
def test_restored_transactions_are_committed_by_exactly_one_writer(old: int, new: int) -> None:
    system = FakeSystem()
    union = _run_old_attempt(system, old)
    assert len(union) == 3 * old
    for subtask in range(new):
        make_writer(system, subtask=subtask, parallelism=new, attempt=1, restored=union)
    assert sorted(system.commit_calls) == sorted(p["id"] for p in union)
    assert set(system.commit_calls.values()) == {1}, "a transaction was committed twice"
    want = sorted(f"s{s}-c{c}" for s in range(old) for c in (1, 2, 3))
    assert sorted(system.records()) == want


def test_a_restored_checkpoint_is_committed_again_after_a_second_failure() -> None:
    system = FakeSystem()
    union = _run_old_attempt(system, 2)
    for attempt in (1, 2):  # two restores from the same checkpoint
        for subtask in range(2):
            make_writer(system, subtask=subtask, parallelism=2, attempt=attempt, restored=union)
    assert set(system.commit_calls.values()) == {2}  # commit must be idempotent: it repeats
    assert len(system.records()) == 6


def test_cleanup_runs_in_writer_0_only_and_only_on_restore_or_failover() -> None:
    system = FakeSystem()
    make_writer(system, subtask=0, parallelism=2)  # a fresh start: nothing to clean
    assert system.cleanups == []
    make_writer(system, subtask=0, parallelism=2, attempt=1)  # failover, no checkpoint yet
    assert system.cleanups == [(0, [])]
    union = _run_old_attempt(system, 2)
    for subtask in range(3):
        make_writer(system, subtask=subtask, parallelism=3, attempt=2, restored=union)
    assert system.cleanups[1:] == [(0, [p["id"] for p in union])]


def test_a_foreign_state_entry_is_a_restore_error() -> None:
    from streamjob import errors

    with pytest.raises(errors.RestoreError, match="cannot read"):
        make_writer(FakeSystem(), restored=[{"records": [1, 2]}])
