"""A job for the multi-process tests, and a file-based two-phase-commit sink.

The processes import this file, so its configuration comes from environment variables:
``STREAMJOB_TEST_OUT`` (output directory), ``STREAMJOB_TEST_EVENTS``, ``STREAMJOB_TEST_RATE``.
Committed output: one file per transaction under ``OUT/committed`` (a hard link, so a commit
is atomic and idempotent); pending transactions under ``OUT/pending``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from streamjob import GeneratorSource, StreamEnvironment
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter, assigned
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import ValueStateDescriptor

NUM_KEYS = 37


def key_of(i: int) -> str:
    return f"k{(i * 7919) % NUM_KEYS}"


class CountPerKey(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))
        self.subtask = runtime_context.get_index_of_this_subtask()

    def process_element(self, value: Any, ctx: Any) -> Any:
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        return ((value[0], n, self.subtask),)


class FileTransactionSink(Sink):
    name = "file-txn"

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def create_writer(self, context: SinkContext) -> SinkWriter:
        return _Writer(self.directory, context)


class _Writer(SinkWriter):
    def __init__(self, directory: Path, context: SinkContext) -> None:
        self.pending_dir = directory / "pending"
        self.committed_dir = directory / "committed"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.committed_dir.mkdir(parents=True, exist_ok=True)
        self.context = context
        self.open: list[Any] = []
        self.pending: list[dict[str, Any]] = []
        for txn in context.restored_state or []:
            if assigned(txn["id"], context):
                self._commit(txn["id"])

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        self.open.extend(records)

    def _commit(self, txn: str) -> None:
        target = self.committed_dir / txn
        if not target.exists():
            with contextlib.suppress(FileExistsError):
                os.link(self.pending_dir / txn, target)

    def snapshot_state(self, checkpoint_id: int) -> list[Any]:
        if self.open:
            txn = f"{self.context.attempt_id}-{self.context.subtask_index}-{checkpoint_id}"
            path = self.pending_dir / txn
            path.write_text("".join(json.dumps(r) + "\n" for r in self.open))
            self.pending.append({"id": txn, "checkpoint": checkpoint_id})
            self.open = []
        return list(self.pending)

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        keep = []
        for txn in self.pending:
            if txn["checkpoint"] <= checkpoint_id:
                self._commit(txn["id"])
            else:
                keep.append(txn)
        self.pending = keep

    def finish(self) -> None:
        if not self.context.checkpointing and self.open:
            self.snapshot_state(0)
            self.notify_checkpoint_complete(0)


def build(env: StreamEnvironment) -> None:
    events = int(os.environ.get("STREAMJOB_TEST_EVENTS", "20000"))
    rate = float(os.environ.get("STREAMJOB_TEST_RATE", "10000"))
    source = GeneratorSource(lambda i: (key_of(i), i), count=events, rate_per_second=rate)
    stream = env.from_source(source, source_name="numbers").uid("numbers")
    if os.environ.get("STREAMJOB_TEST_VARIANT"):  # a different version of the job code
        stream = stream.filter(lambda r: True).uid("extra-filter")
    (
        stream.key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(FileTransactionSink(os.environ["STREAMJOB_TEST_OUT"]))
        .uid("sink")
    )


def committed(directory: Path) -> list[tuple[str, int, int]]:
    out = []
    for path in sorted((directory / "committed").iterdir()):
        out.extend(tuple(json.loads(line)) for line in path.read_text().splitlines())
    return out


def expected_pairs(events: int) -> Counter[tuple[str, int]]:
    counts: Counter[str] = Counter(key_of(i) for i in range(events))
    return Counter((k, n) for k, c in counts.items() for n in range(1, c + 1))
