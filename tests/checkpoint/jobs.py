"""Jobs and helpers shared by the checkpoint tests.

``keyed_count`` is W1 in small: a rate-limited generator (so checkpoints happen mid-stream),
``key_by``, a per-key count in ValueState emitting ``(key, n, subtask)``. Its correct output is
every ``(key, n)`` for n = 1..count(key) exactly once.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from streamjob import GeneratorSource, StreamEnvironment, keygroups
from streamjob.checkpoint.faults import FaultInjector
from streamjob.functions import KeyedProcessFunction, MapFunction, RuntimeContext
from streamjob.state import ValueStateDescriptor
from streamjob.testing import TestingSink

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


class Shared:
    """State shared by every copy of a function (functions are deep-copied per subtask)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self


class Progress:
    """Counts completed checkpoints (fed by a fault-injector observer)."""

    def __init__(self) -> None:
        self.completed = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> Progress:
        return self

    def attach(self, faults: FaultInjector) -> FaultInjector:
        faults.observe("after_metadata", lambda ctx: self._bump())
        return faults

    def _bump(self) -> None:
        self.completed += 1


class CrashOnce(MapFunction):
    """Raises once (a simulated process crash) at the first record with index >= ``at`` seen
    after ``progress`` counted ``after_checkpoints`` completed checkpoints, so the restore
    is always from a checkpoint with real progress."""

    def __init__(
        self, at: int | None, progress: Progress | None, after_checkpoints: int = 2
    ) -> None:
        self.at = at
        self.progress = progress
        self.after = after_checkpoints
        self.shared = Shared(fired=False)

    def map(self, value: Any) -> Any:
        if (
            self.at is not None
            and value[1] >= self.at
            and not self.shared.fired
            and (self.progress is None or self.progress.completed >= self.after)
        ):
            self.shared.fired = True
            raise RuntimeError(f"simulated crash at record {value[1]}")
        return value


def keyed_count(
    sink: TestingSink,
    *,
    events: int,
    rate: float | None = 20_000,
    crash_at: int | None = None,
    progress: Progress | None = None,
) -> Any:
    def build(env: StreamEnvironment) -> None:
        source = GeneratorSource(lambda i: (key_of(i), i), count=events, rate_per_second=rate)
        (
            env.from_source(source, source_name="numbers")
            .uid("numbers")
            .map(CrashOnce(crash_at, progress))
            .uid("crash")
            .key_by(lambda r: r[0])
            .process(CountPerKey())
            .uid("count")
            .sink_to(sink)
            .uid("sink")
        )

    return build


def expected_pairs(events: int) -> Counter[tuple[str, int]]:
    counts: Counter[str] = Counter(key_of(i) for i in range(events))
    return Counter((k, n) for k, c in counts.items() for n in range(1, c + 1))


def committed_pairs(sink: TestingSink) -> Counter[tuple[str, int]]:
    return Counter((k, n) for k, n, _ in sink.committed)


def assert_exactly_once(sink: TestingSink, events: int) -> None:
    got = committed_pairs(sink)
    want = expected_pairs(events)
    duplicates = {p: c for p, c in got.items() if c > 1}
    missing = want - got
    assert not duplicates, f"{len(duplicates)} duplicated outputs, e.g. {list(duplicates)[:3]}"
    assert not missing, f"{len(missing)} missing outputs, e.g. {list(missing)[:3]}"
    assert got == want


def assert_keyed_placement(sink: TestingSink, parallelism: int, max_parallelism: int = 128) -> None:
    for key, _, subtask in sink.committed:
        kg = keygroups.assign_to_key_group(key, max_parallelism)
        assert subtask == keygroups.operator_index_for_key_group(max_parallelism, parallelism, kg)


def fresh_copy(value: Any) -> Any:
    return copy.deepcopy(value)
