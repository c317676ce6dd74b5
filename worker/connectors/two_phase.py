"""Two-phase commit for sinks: Flink's ``TwoPhaseCommitSinkFunction`` as a :class:`SinkWriter`.

A subclass says how to begin, write, pre-commit, commit and abort one transaction of its
external system (:mod:`streamjob.connectors.file_sink`: a part file as a multipart upload);
this base class runs the protocol the runtime drives through
:class:`streamjob.runtime.operators.io.SinkOperator`:

1. ``initialize()`` (the sink's ``create_writer`` calls it): commit the restored pending
   transactions :func:`~streamjob.connectors.sink.assigned` to this writer. The restored state
   is the union of every old writer's pending list, so each transaction is committed by exactly
   one new writer whatever the parallelism; commits are idempotent because the checkpoint may
   have been committed before the failure. Then writer 0 alone, when restoring or failing over,
   calls ``recover_and_cleanup`` with all restored transactions, to abort what earlier attempts
   left unfinished. Then begin the first transaction.
2. ``write_batch``: write into the open transaction.
3. ``snapshot_state(n)`` at barrier *n*: pre-commit the open transaction (durable, not yet
   visible), keep it pending under *n*, begin the next one, and return every pending
   transaction (:class:`PendingTransaction` as JSON) for the checkpoint.
4. ``notify_checkpoint_complete(n)``: commit, in order, the pending transactions of checkpoints
   <= *n*. The pending list holds this writer's own transactions only, so an attempt commits
   only what it wrote; earlier attempts' transactions are committed in step 1.
5. ``notify_checkpoint_aborted(n)``: nothing; the next checkpoint carries the pending ones again.
6. ``finish()``: without checkpointing, pre-commit and commit at once; with checkpointing the
   final checkpoint after end of input does it (FLIP-147).
7. ``close()``: abort the open transaction (no checkpoint holds it). Pending ones are kept: a
   completed checkpoint may hold them, and the next attempt commits them (step 1) or its
   writer 0 aborts them (they are then in no restored checkpoint).

Each transaction is a small state machine (:class:`TransactionState`); a call in the wrong
state raises :class:`TransactionStateError`.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import logging
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from streamjob import errors
from streamjob.connectors import sink

log = logging.getLogger(__name__)

H = TypeVar("H")
"""The subclass's handle on one open transaction (live objects; never serialized)."""


class TransactionStateError(errors.StreamJobError):
    """A two-phase-commit step was called in the wrong state (a bug in the sink or runtime)."""


class TransactionState(enum.Enum):
    OPEN = "open"
    PRE_COMMITTED = "pre-committed"
    COMMITTED = "committed"
    ABORTED = "aborted"


_ALLOWED: Mapping[str, frozenset[TransactionState]] = {
    "write": frozenset({TransactionState.OPEN}),
    "pre_commit": frozenset({TransactionState.OPEN}),
    "commit": frozenset({TransactionState.PRE_COMMITTED}),
    "abort": frozenset({TransactionState.OPEN}),
}


@dataclasses.dataclass
class Transaction(Generic[H]):
    """One transaction of this writer: OPEN -> PRE_COMMITTED -> COMMITTED, or OPEN -> ABORTED."""

    transaction_id: str
    handle: H
    state: TransactionState = TransactionState.OPEN
    pending: PendingTransaction | None = None

    def require(self, operation: str) -> None:
        if self.state not in _ALLOWED[operation]:
            raise TransactionStateError(
                f"cannot {operation} transaction {self.transaction_id}: it is "
                f"{self.state.value} (allowed from "
                f"{', '.join(sorted(s.value for s in _ALLOWED[operation]))})"
            )


@dataclasses.dataclass(frozen=True)
class PendingTransaction:
    """A pre-committed transaction as stored in checkpoints (small, JSON)."""

    transaction_id: str
    checkpoint_id: int
    attempt_id: str
    subtask: int
    descriptor: Any
    """What the subclass's ``pre_commit`` returned: enough to commit from another process."""

    def to_state(self) -> dict[str, Any]:
        return {
            "id": self.transaction_id,
            "checkpoint": self.checkpoint_id,
            "attempt": self.attempt_id,
            "subtask": self.subtask,
            "descriptor": self.descriptor,
        }

    @classmethod
    def from_state(cls, entry: Mapping[str, Any]) -> PendingTransaction:
        try:
            return cls(
                transaction_id=str(entry["id"]),
                checkpoint_id=int(entry["checkpoint"]),
                attempt_id=str(entry["attempt"]),
                subtask=int(entry["subtask"]),
                descriptor=entry["descriptor"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.RestoreError(
                f"the checkpoint holds a sink transaction this two-phase-commit sink cannot "
                f"read ({entry!r}): was the sink's uid reused for another kind of sink? Give "
                "it a new uid, or restore with allow_non_restored_state"
            ) from exc


class TwoPhaseCommitSinkWriter(sink.SinkWriter, Generic[H]):
    """The protocol of the module docstring; subclasses implement the five abstract steps."""

    def __init__(self, context: sink.SinkContext) -> None:
        self.context = context
        self._sequence = 0
        self._current: Transaction[H] | None = None
        self._pending: list[Transaction[H]] = []
        self._initialized = False
        self._closed = False

    # -- what a subclass provides ---------------------------------------------------------------

    @abc.abstractmethod
    def begin_transaction(self, transaction_id: str) -> H:
        """Start a transaction; cheap (open external resources lazily, on first write)."""

    @abc.abstractmethod
    def write(self, transaction: H, records: list[Any], timestamps: list[int] | None) -> None:
        """Add records to the open transaction."""

    @abc.abstractmethod
    def pre_commit(self, transaction: H) -> Any | None:
        """Make the transaction durable but not visible; return its descriptor (JSON-able,
        small), or None if it is empty (nothing to commit)."""

    @abc.abstractmethod
    def commit(self, descriptor: Any) -> None:
        """Make a pre-committed transaction visible. Must be idempotent: it may run again after
        a restore, in another process, for a transaction already committed."""

    @abc.abstractmethod
    def abort(self, transaction: H) -> None:
        """Drop an open (never pre-committed) transaction; best effort."""

    def recover_and_cleanup(self, restored: list[PendingTransaction]) -> None:
        """Writer 0, when restoring or failing over: abort whatever earlier attempts left
        unfinished that is not in ``restored`` (every pending transaction of the restored
        checkpoint, all writers). Nothing by default."""

    # -- the protocol ---------------------------------------------------------------------------

    def initialize(self) -> None:
        """Step 1: commit the restored transactions assigned here, clean up, begin."""
        if self._initialized:
            raise TransactionStateError("initialize() was called twice on one sink writer")
        self._initialized = True
        context = self.context
        restored = [PendingTransaction.from_state(e) for e in context.restored_state or []]
        for pending in restored:
            if sink.assigned(pending.transaction_id, context):
                self.commit(pending.descriptor)
        if context.subtask_index == 0 and (context.restored_state is not None or context.attempt):
            self.recover_and_cleanup(restored)
        self._begin()

    @property
    def current_transaction(self) -> Transaction[H]:
        self._require_running("use the open transaction")
        assert self._current is not None
        return self._current

    @property
    def pending_transactions(self) -> tuple[PendingTransaction, ...]:
        """Pre-committed, not yet committed, in checkpoint order."""
        return tuple(t.pending for t in self._pending if t.pending is not None)

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        transaction = self.current_transaction
        transaction.require("write")
        self.write(transaction.handle, records, timestamps)

    def snapshot_state(self, checkpoint_id: int) -> list[Any]:
        transaction = self.current_transaction
        if self._pending and self._pending[-1].pending is not None:
            last = self._pending[-1].pending.checkpoint_id
            if checkpoint_id <= last:
                raise TransactionStateError(
                    f"snapshot of checkpoint {checkpoint_id} after checkpoint {last}: "
                    "checkpoint ids must increase"
                )
        self._pre_commit(transaction, checkpoint_id)
        self._begin()
        return [p.to_state() for p in self.pending_transactions]

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self._require_running("commit")
        while self._pending:
            transaction = self._pending[0]
            assert transaction.pending is not None
            if transaction.pending.checkpoint_id > checkpoint_id:
                break
            self._commit(transaction)
            self._pending.pop(0)

    def notify_checkpoint_aborted(self, checkpoint_id: int) -> None:
        self._require_running("abort a checkpoint")

    def finish(self) -> None:
        transaction = self.current_transaction
        if self.context.checkpointing:
            return  # the final checkpoint pre-commits and commits it
        self._pre_commit(transaction, checkpoint_id=0)
        for pending in list(self._pending):
            self._commit(pending)
        self._pending.clear()
        self._begin()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        current, self._current = self._current, None
        if current is not None and current.state is TransactionState.OPEN:
            try:
                self.abort(current.handle)
            except Exception:  # best effort: writer 0 of the next attempt cleans up
                log.warning("could not abort transaction %s", current.transaction_id, exc_info=True)
            current.state = TransactionState.ABORTED

    # -- steps ----------------------------------------------------------------------------------

    def _begin(self) -> None:
        context = self.context
        transaction_id = f"{context.attempt_id}-{context.subtask_index}-{self._sequence}"
        self._sequence += 1
        self._current = Transaction(transaction_id, self.begin_transaction(transaction_id))

    def _pre_commit(self, transaction: Transaction[H], checkpoint_id: int) -> None:
        transaction.require("pre_commit")
        descriptor = self.pre_commit(transaction.handle)
        transaction.state = TransactionState.PRE_COMMITTED
        if descriptor is None:  # empty: nothing to commit, nothing to store
            transaction.state = TransactionState.COMMITTED
            return
        transaction.pending = PendingTransaction(
            transaction_id=transaction.transaction_id,
            checkpoint_id=checkpoint_id,
            attempt_id=self.context.attempt_id,
            subtask=self.context.subtask_index,
            descriptor=descriptor,
        )
        self._pending.append(transaction)

    def _commit(self, transaction: Transaction[H]) -> None:
        transaction.require("commit")
        assert transaction.pending is not None
        self.commit(transaction.pending.descriptor)
        transaction.state = TransactionState.COMMITTED

    def _require_running(self, operation: str) -> None:
        if not self._initialized:
            raise TransactionStateError(
                f"cannot {operation}: the sink writer was not initialized (its sink's "
                "create_writer must call writer.initialize())"
            )
        if self._closed:
            raise TransactionStateError(f"cannot {operation}: the sink writer is closed")
