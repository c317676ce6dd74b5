"""Test helpers as public API: ``TestingSource``, ``TestingSink``, ``ManualClock``, ``run_local``.

``TestingSource(items)`` replays a list; the markers ``EOF`` (end the input here), ``ABORT``
(fail the job the first time it is reached, so a re-run resumes past it) and ``PAUSE(s)``
shape a run. ``TestingSink(list)`` is two-phase: records are pending until committed (at end of
input without checkpoints, on checkpoint completion with them), and only committed records
appear in the list.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streamjob.api.environment import StreamEnvironment
from streamjob.checkpoint.faults import FaultInjector
from streamjob.checkpoint.restart import RestartStrategy
from streamjob.clock import ManualClock
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter, assigned
from streamjob.connectors.source import Polled, ReaderContext, Source, SourceReader, SourceSplit
from streamjob.execution.results import JobRunResult

__all__ = ["ABORT", "EOF", "PAUSE", "ManualClock", "TestingSink", "TestingSource", "run_local"]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


EOF = _Marker("EOF")
ABORT = _Marker("ABORT")


@dataclass(frozen=True)
class PAUSE:
    seconds: float


class TestingAbort(Exception):
    """Raised by ``TestingSource.ABORT`` to simulate a crash."""


class TestingSource(Source):
    """A non-parallel source over ``items`` with EOF/ABORT/PAUSE markers."""

    __test__ = False
    name = "testing"
    max_parallelism = 1
    EOF = EOF
    ABORT = ABORT
    PAUSE = PAUSE

    def __init__(self, items: Iterable[Any], batch_size: int | None = None) -> None:
        self.items = list(items)
        self.batch_size = batch_size
        self.fired_aborts: set[int] = set()

    def is_bounded(self) -> bool:
        return True

    def create_splits(self, parallelism: int) -> list[SourceSplit]:
        return [SourceSplit("testing", 0)]

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return _TestingReader(self)


class _TestingReader(SourceReader):
    def __init__(self, source: TestingSource) -> None:
        self._source = source
        self._position: int | None = None
        self._eof = False

    def add_splits(self, splits: list[SourceSplit]) -> None:
        for split in splits:
            self._position = int(split.position or 0)

    def poll(self, max_records: int) -> Polled | None:
        if self._position is None or self.is_finished():
            return None
        limit = min(max_records, self._source.batch_size or max_records)
        items = self._source.items
        out: list[Any] = []
        while self._position < len(items) and len(out) < limit:
            item = items[self._position]
            if item is EOF:
                self._position += 1
                self._eof = True
                break
            if item is ABORT:
                if self._position not in self._source.fired_aborts:
                    self._source.fired_aborts.add(self._position)
                    raise TestingAbort(f"TestingSource.ABORT at item {self._position}")
                self._position += 1
                continue
            if isinstance(item, PAUSE):
                if out:
                    break
                self._position += 1
                time.sleep(item.seconds)
                break
            out.append(item)
            self._position += 1
        return Polled(out) if out else None

    def is_finished(self) -> bool:
        return self._eof or self._position is None or self._position >= len(self._source.items)

    def snapshot_splits(self) -> list[SourceSplit]:
        return [] if self._position is None else [SourceSplit("testing", self._position)]


class TestingSink(Sink):
    """Collects committed records into ``target``; pending ones are kept apart.

    Two-phase like a real transactional sink: records go into an open transaction; at a
    checkpoint the transaction is pre-committed (stored in the checkpoint); when the checkpoint
    completes it is committed, which appends its records to ``committed``. Commits are
    idempotent by transaction id, so committing a restored transaction twice is harmless.
    Without checkpointing, end of input commits. ``at_least_once=True`` makes it commit on
    every write instead (a negative control: failures then show duplicates).
    """

    __test__ = False
    name = "testing"

    def __init__(self, target: list[Any] | None = None, *, at_least_once: bool = False) -> None:
        self.committed: list[Any] = target if target is not None else []
        self.committed_transactions: set[str] = set()
        self.subtask_of: list[int] = []
        self.at_least_once = at_least_once
        self._lock = threading.Lock()

    def create_writer(self, context: SinkContext) -> SinkWriter:
        return _TestingWriter(self, context)

    def commit(self, subtask: int, records: list[Any], transaction: str | None = None) -> None:
        with self._lock:
            if transaction is not None:
                if transaction in self.committed_transactions:
                    return
                self.committed_transactions.add(transaction)
            self.committed.extend(records)
            self.subtask_of.extend([subtask] * len(records))


class _TestingWriter(SinkWriter):
    def __init__(self, sink: TestingSink, context: SinkContext) -> None:
        self._sink = sink
        self._context = context
        self._subtask = context.subtask_index
        self._open: list[Any] = []
        self._pending: list[dict[str, Any]] = []
        for txn in context.restored_state or []:
            # The restored checkpoint completed: its transactions must be committed.
            if assigned(txn["id"], context):
                sink.commit(self._subtask, txn["records"], txn["id"])

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        if self._sink.at_least_once:
            self._sink.commit(self._subtask, list(records))
        else:
            self._open.extend(records)

    def finish(self) -> None:
        if not self._context.checkpointing:
            records, self._open = self._open, []
            self._sink.commit(self._subtask, records)

    def snapshot_state(self, checkpoint_id: int) -> list[Any]:
        if self._open:
            txn_id = f"{self._context.attempt_id}-{self._subtask}-{checkpoint_id}"
            self._pending.append({"id": txn_id, "checkpoint": checkpoint_id, "records": self._open})
            self._open = []
        return list(self._pending)

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        keep = []
        for txn in self._pending:
            if txn["checkpoint"] <= checkpoint_id:
                self._sink.commit(self._subtask, txn["records"], txn["id"])
            else:
                keep.append(txn)
        self._pending = keep


def run_local(
    job: Callable[[StreamEnvironment], Any],
    *,
    parallelism: int = 1,
    max_parallelism: int | None = None,
    clock: Any = None,
    batch_size: int | None = None,
    checkpoint_dir: str | None = None,
    checkpoint_interval_ms: int | None = None,
    restart: RestartStrategy | None = None,
    faults: FaultInjector | None = None,
    storage: Any = None,
    state_backend: str | None = None,
    **checkpoint_settings: Any,
) -> JobRunResult:
    """Build ``job`` on a fresh environment and run it in this process to completion.

    With ``checkpoint_dir`` the run checkpoints (every ``checkpoint_interval_ms``, plus the
    final checkpoint at end of input) and starts from the latest completed checkpoint found
    there: calling ``run_local`` again after a failure resumes, like restarting a process.
    ``state_backend`` picks the keyed state backend (``"hashmap"``, the default, or
    ``"rocksdb"``).
    """
    env = StreamEnvironment(parallelism=parallelism, max_parallelism=max_parallelism)
    if state_backend is not None:
        env.config.state_backend = state_backend
    if clock is not None:
        env.config.clock = clock
    if batch_size is not None:
        env.config.batch_size = batch_size
    job(env)
    if checkpoint_dir is not None:
        env.configure_checkpoints(
            directory=checkpoint_dir, interval_ms=checkpoint_interval_ms, **checkpoint_settings
        )
    if restart is not None:
        env.set_restart_strategy(restart)
    env.get_job_graph()
    return asyncio.run(env.create_runner(faults=faults, storage=storage).run())
