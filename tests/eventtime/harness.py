"""An operator test harness (Flink's ``KeyedOneInputStreamOperatorTestHarness``, in small).

It builds one keyed operator subtask outside any task: a ``ManualClock``, a hashmap backend for
the subtask's key groups, a mailbox that queues actions until :meth:`Harness.run_mail`, and an
output that records every batch, side output and watermark. Records are pushed with their keys
and key groups computed here, as the key-group partitioner would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamjob import keygroups
from streamjob.clock import ManualClock
from streamjob.runtime.events import Batch
from streamjob.runtime.operators.base import OperatorContext, Output, StreamOperator
from streamjob.state import HashMapStateBackend


class RecordingOutput(Output):
    def __init__(self) -> None:
        self.records: list[tuple[Any, int | None]] = []
        self.side: dict[str, list[tuple[Any, int | None]]] = {}
        self.watermarks: list[int] = []

    def emit(self, batch: Batch) -> None:
        stamps = batch.timestamps or [None] * len(batch.records)
        self.records.extend(zip(batch.records, stamps, strict=True))

    def emit_side(self, tag: str, batch: Batch) -> None:
        stamps = batch.timestamps or [None] * len(batch.records)
        self.side.setdefault(tag, []).extend(zip(batch.records, stamps, strict=True))

    def emit_watermark(self, timestamp: int) -> None:
        self.watermarks.append(timestamp)


class Harness:
    def __init__(
        self,
        operator: StreamOperator,
        key_fn: Callable[[Any], Any],
        *,
        subtask: int = 0,
        parallelism: int = 1,
        max_parallelism: int = 128,
        clock: ManualClock | None = None,
        open_now: bool = True,
    ) -> None:
        self.operator = operator
        self.key_fn = key_fn
        self.clock = clock or ManualClock(0)
        self.mail: list[Callable[[], None]] = []
        self.output = RecordingOutput()
        self.max_parallelism = max_parallelism
        self.key_group_range = keygroups.KeyGroupRange.of_operator(
            subtask, parallelism, max_parallelism
        )
        ctx = OperatorContext(
            operator_name="op-under-test",
            uid="op",
            task_name="test",
            subtask_index=subtask,
            parallelism=parallelism,
            max_parallelism=max_parallelism,
            clock=self.clock,
            key_group_range=self.key_group_range,
            mailbox=self.mail.append,
        )
        operator.setup(ctx, self.output)
        if operator.is_keyed:
            operator.set_keyed_backend(  # type: ignore[attr-defined]
                HashMapStateBackend(
                    max_parallelism=max_parallelism,
                    key_group_range=self.key_group_range,
                    clock=self.clock,
                )
            )
        if open_now:
            operator.open()

    def owns(self, record: Any) -> bool:
        kg = keygroups.assign_to_key_group(self.key_fn(record), self.max_parallelism)
        return kg in self.key_group_range

    def process(self, records: list[Any], timestamps: list[int] | None = None) -> None:
        keys = [self.key_fn(r) for r in records]
        kgs = [keygroups.assign_to_key_group(k, self.max_parallelism) for k in keys]
        self.operator.process_batch(Batch(list(records), timestamps, keys, kgs), 0)

    def element(self, record: Any, timestamp: int | None = None) -> None:
        self.process([record], None if timestamp is None else [timestamp])

    def watermark(self, timestamp: int) -> None:
        self.operator.process_watermark(timestamp)

    def run_mail(self) -> None:
        while self.mail:
            self.mail.pop(0)()

    def advance(self, millis: int) -> None:
        """Move processing time and run what the operator posted to its mailbox."""
        self.clock.advance(millis)
        self.run_mail()

    def set_time(self, now: int) -> None:
        self.clock.set(now)
        self.run_mail()

    def take(self) -> list[tuple[Any, int | None]]:
        out, self.output.records = self.output.records, []
        return out

    def close(self) -> None:
        self.operator.close()
