"""Shared workload definitions for the benchmarks (W1: keyed running count).

Records come from a precomputed table so that generating one costs tens of nanoseconds:
100,000 distinct keys drawn with a Zipf-like skew (fixed seed), record ``i`` is
``TABLE[i % len(TABLE)]`` = ``(user, i-independent value)``.
"""

from __future__ import annotations

import os
import random
from typing import Any

from streamjob import GeneratorSource
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import ValueStateDescriptor

NUM_KEYS = 100_000
TABLE_SIZE = 1 << 20
ZIPF_S = 1.1


def make_table(seed: int = 42) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    keys = [f"user-{k}" for k in range(NUM_KEYS)]
    weights = [1.0 / (rank + 1) ** ZIPF_S for rank in range(NUM_KEYS)]
    picks = rng.choices(range(NUM_KEYS), weights=weights, k=TABLE_SIZE)
    return [(keys[p], 1) for p in picks]


TABLE = make_table()


def w1_records(indices: range) -> list[tuple[str, int]]:
    table = TABLE
    n = len(table)
    start = indices.start % n
    step = indices.step
    stop = start + (len(indices) - 1) * step + 1
    if step > 0 and stop <= n:  # one slice (a subtask's split is strided at parallelism > 1)
        return table[start:stop:step]
    return [table[i % n] for i in indices]


def w1_source(count: int) -> GeneratorSource:
    return GeneratorSource(batch_fn=w1_records, count=count)


class CountPerKey(KeyedProcessFunction):
    """Per-key running count in ValueState; emits (key, count) for every record."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        state = self.count
        n = (state.value() or 0) + 1
        state.update(n)
        return ((value[0], n),)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
