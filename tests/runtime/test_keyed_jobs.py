"""Keyed jobs: results, real parallelism, and the built-in keyed aggregations.

Aspects covered:
- a keyed running count gives identical results at parallelism 1, 2 and 4;
- every keyed record is processed by subtask ``operator_index(key_group(key))`` (DESIGN.md
  section 10: equal output alone would pass with parallelism ignored);
- reduce/sum/min/max/min_by/max_by follow Flink's semantics;
- keyed state is per key: two keys never see each other's state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from streamjob import GeneratorSource, StreamEnvironment, keygroups
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import ListStateDescriptor, ValueStateDescriptor
from streamjob.testing import TestingSink, TestingSource, run_local


class CountWithSubtask(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))
        self.subtask = runtime_context.get_index_of_this_subtask()
        self.max_parallelism = runtime_context.get_max_number_of_parallel_subtasks()

    def process_element(self, value: Any, ctx: Any) -> Any:
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        yield (ctx.get_current_key(), n, self.subtask)


def keyed_count_job(sink: TestingSink, events: int = 5000) -> Any:
    def build(env: StreamEnvironment) -> None:
        (
            env.from_source(GeneratorSource(lambda i: (f"k{(i * 7919) % 97}", i), count=events))
            .key_by(lambda r: r[0])
            .process(CountWithSubtask())
            .uid("count")
            .sink_to(sink)
        )

    return build


@pytest.mark.parametrize("p", [1, 2, 4])
def test_keyed_count_is_the_same_at_every_parallelism(p: int) -> None:
    reference: Counter[str] = Counter(f"k{(i * 7919) % 97}" for i in range(5000))
    sink = TestingSink()
    run_local(keyed_count_job(sink), parallelism=p)
    finals: dict[str, int] = {}
    for key, n, _ in sink.committed:
        finals[key] = max(finals.get(key, 0), n)
    assert finals == dict(reference)
    # every count from 1..n appears exactly once per key: no duplicate, no gap
    per_key = Counter((key, n) for key, n, _ in sink.committed)
    assert all(c == 1 for c in per_key.values())
    assert len(sink.committed) == 5000


@pytest.mark.parametrize("p", [2, 3, 4])
def test_every_keyed_record_runs_on_the_subtask_owning_its_key_group(p: int) -> None:
    sink = TestingSink()
    run_local(keyed_count_job(sink), parallelism=p, max_parallelism=128)
    subtasks_used = set()
    for key, _, subtask in sink.committed:
        kg = keygroups.assign_to_key_group(key, 128)
        assert subtask == keygroups.operator_index_for_key_group(128, p, kg), key
        subtasks_used.add(subtask)
    assert subtasks_used == set(range(p)), "parallelism was not really used"


def test_rolling_reduce_emits_every_intermediate_result(parallelism: int) -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        data = [("a", 1), ("b", 10), ("a", 2), ("b", 20), ("a", 3)]
        env.from_collection(data).key_by(lambda r: r[0]).reduce(
            lambda x, y: (x[0], x[1] + y[1])
        ).sink_to(sink)

    run_local(build, parallelism=parallelism)
    assert sorted(sink.committed) == sorted([("a", 1), ("b", 10), ("a", 3), ("b", 30), ("a", 6)])


def test_sum_min_max_by_field_follow_flink(parallelism: int) -> None:
    data = [("a", 5, "x"), ("a", 3, "y"), ("a", 9, "z"), ("b", 1, "w")]
    results: dict[str, list[Any]] = {}
    for kind in ("sum", "min", "max", "min_by", "max_by"):
        sink = TestingSink()

        def build(env: StreamEnvironment, kind: str = kind, sink: TestingSink = sink) -> None:
            keyed = env.from_collection(data).key_by(lambda r: r[0])
            getattr(keyed, kind)(1).sink_to(sink)

        run_local(build, parallelism=parallelism)
        results[kind] = sink.committed
    last_a = {k: [r for r in v if r[0] == "a"][-1] for k, v in results.items()}
    assert last_a["sum"] == ("a", 17, "x")
    assert last_a["min"] == ("a", 3, "x")  # only the field changes
    assert last_a["max"] == ("a", 9, "x")
    assert last_a["min_by"] == ("a", 3, "y")  # the whole record
    assert last_a["max_by"] == ("a", 9, "z")


def test_sum_of_plain_numbers_and_dict_fields() -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        env.from_collection([{"k": "a", "v": 1}, {"k": "a", "v": 2}]).key_by(lambda r: r["k"]).sum(
            "v"
        ).sink_to(sink)

    run_local(build)
    assert sink.committed[-1] == {"k": "a", "v": 3}


def test_state_is_isolated_per_key(parallelism: int) -> None:
    class Collect(KeyedProcessFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.seen = runtime_context.get_state(ListStateDescriptor("seen"))

        def process_element(self, value: Any, ctx: Any) -> Any:
            self.seen.add(value[1])
            return [(value[0], tuple(self.seen.get()))]

    sink = TestingSink()
    items = [("x", 1), ("y", 2), ("x", 3), (("t", 1), 4), ("y", 5), (("t", 1), 6)]

    def build(env: StreamEnvironment) -> None:
        env.from_source(TestingSource(items)).key_by(lambda r: r[0]).process(Collect()).sink_to(
            sink
        )

    run_local(build, parallelism=parallelism)
    finals = {k: v for k, v in sink.committed}
    assert finals == {"x": (1, 3), "y": (2, 5), ("t", 1): (4, 6)}
