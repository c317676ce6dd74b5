"""The job the operator scenarios run: keyed running counts into the exactly-once FileSink.

Its pods import this file by path (``tests/operator/jobs.py:build``), so it imports only
``streamjob``, and every setting comes from the StreamJob's ``job.args`` (the same in the
JobManager and every TaskManager): ``OUT EVENTS RATE``. A bounded :class:`GeneratorSource` of
``EVENTS`` records at ``RATE`` records/s, keyed by one of :data:`NUM_KEYS` keys; each record
comes out as ``[key, n, subtask]`` where ``n`` counts the key's records so far (ValueState) and
``subtask`` is the subtask that counted it. The committed output (finished part files) of a
failure-free run is known in advance (:func:`expected_pairs`), so a failover, rescale, suspend
or upgrade that lost or replayed state shows up as a missing or a duplicate pair.

``build_v2`` is the "new version" of the code for upgrade scenarios: the same results through
one more (pass-through) operator.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from streamjob import FileSink, GeneratorSource, StreamEnvironment
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


def _settings(env: StreamEnvironment) -> tuple[str, int, float]:
    args = list(env.job_parameters.get("args") or ())
    if len(args) != 3:
        raise ValueError(f"tests/operator/jobs.py takes OUT EVENTS RATE as job.args, got {args}")
    return args[0], int(args[1]), float(args[2])


def _pipeline(env: StreamEnvironment, *, v2: bool) -> None:
    out, events, rate = _settings(env)
    source = GeneratorSource(lambda i: (key_of(i), i), count=events, rate_per_second=rate)
    stream = env.from_source(source, source_name="numbers").uid("numbers")
    if v2:
        stream = stream.filter(lambda r: True).uid("v2-filter")
    (
        stream.key_by(lambda r: r[0])
        .process(CountPerKey())
        .uid("count")
        .sink_to(FileSink(out, encoder=json.dumps))
        .uid("sink")
    )


def build(env: StreamEnvironment) -> None:
    _pipeline(env, v2=False)


def build_v2(env: StreamEnvironment) -> None:
    _pipeline(env, v2=True)


# -- reading the results (the tests' side) ---------------------------------------------------------
def committed(directory: Path) -> list[tuple[str, int, int]]:
    """Every record in the finished part files (in-progress and pending uploads are invisible)."""
    out = []
    for path in sorted(directory.glob("part-*")):
        out.extend(tuple(json.loads(line)) for line in path.read_text().splitlines())
    return out


def expected_pairs(events: int) -> Counter[tuple[str, int]]:
    """The (key, n) pairs of a failure-free run over ``events`` records."""
    counts: Counter[str] = Counter(key_of(i) for i in range(events))
    return Counter((k, n) for k, c in counts.items() for n in range(1, c + 1))


def problems(rows: list[tuple[str, int, int]], events: int) -> list[str]:
    """What differs from the failure-free run: duplicates, missing or unexpected pairs."""
    got = Counter((k, n) for k, n, _ in rows)
    want = expected_pairs(events)
    found = []
    duplicates = sorted(k for k, c in got.items() if c > 1)
    if duplicates:
        found.append(f"{len(duplicates)} duplicated pairs, e.g. {duplicates[:3]}")
    missing = sorted((want - got).keys())
    if missing:
        found.append(f"{len(missing)} missing pairs, e.g. {missing[:3]}")
    extra = sorted((got - want).keys() - set(duplicates))
    if extra:
        found.append(f"{len(extra)} unexpected pairs, e.g. {extra[:3]}")
    return found


def prefix_problems(rows: list[tuple[str, int, int]]) -> list[str]:
    """For a job stopped early: each key's counts must be exactly 1..c (no gap, no duplicate)."""
    per_key: dict[str, list[int]] = {}
    for key, n, _ in rows:
        per_key.setdefault(key, []).append(n)
    found = []
    for key, ns in sorted(per_key.items()):
        if sorted(ns) != list(range(1, len(ns) + 1)):
            found.append(f"{key}: counts {sorted(ns)[:5]}... are not 1..{len(ns)}")
    return found
