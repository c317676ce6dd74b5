"""Stateless operators, partitioning and stream shapes.

Aspects covered: map/filter/flat_map/process (functions and Function objects with open/close),
side outputs, union, rebalance and broadcast, chaining (what is and is not chained), and
timestamps staying parallel to records through filter/flat_map.
"""

from __future__ import annotations

from typing import Any

from streamjob import GeneratorSource, OutputTag, StreamEnvironment
from streamjob.functions import MapFunction, ProcessFunction, RuntimeContext
from streamjob.runtime.partitioners import PartitionKind
from streamjob.testing import TestingSink, run_local


def test_map_filter_flat_map(parallelism: int) -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        (
            env.from_source(GeneratorSource(lambda i: i, count=1000))
            .map(lambda x: x * 3)
            .filter(lambda x: x % 2 == 0)
            .flat_map(lambda x: [x, -x])
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    expected = [y for i in range(1000) if (i * 3) % 2 == 0 for y in (i * 3, -(i * 3))]
    assert sorted(sink.committed) == sorted(expected)


def test_function_objects_get_open_and_close_per_subtask(parallelism: int) -> None:
    closed: list[int] = []

    class Tag(MapFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.index = runtime_context.get_index_of_this_subtask()
            self.parallelism = runtime_context.get_number_of_parallel_subtasks()

        def map(self, value: Any) -> Any:
            return (value, self.index, self.parallelism)

        def close(self) -> None:
            closed.append(self.index)

    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        env.from_source(GeneratorSource(lambda i: i, count=100)).map(Tag()).sink_to(sink)

    run_local(build, parallelism=parallelism)
    assert sorted(v for v, _, _ in sink.committed) == list(range(100))
    assert {i for _, i, _ in sink.committed} == set(range(parallelism))
    assert {p for _, _, p in sink.committed} == {parallelism}
    assert sorted(closed) == list(range(parallelism))


def test_side_outputs(parallelism: int) -> None:
    odd = OutputTag("odd")
    main_sink, side_sink = TestingSink(), TestingSink()

    class Split(ProcessFunction):
        def process_element(self, value: Any, ctx: Any) -> Any:
            if value % 2:
                ctx.output(odd, value)
            else:
                yield value

    def build(env: StreamEnvironment) -> None:
        evens = env.from_source(GeneratorSource(lambda i: i, count=50)).process(Split())
        evens.sink_to(main_sink)
        evens.get_side_output(odd).map(lambda x: x * 10).sink_to(side_sink)

    run_local(build, parallelism=parallelism)
    assert sorted(main_sink.committed) == list(range(0, 50, 2))
    assert sorted(side_sink.committed) == [x * 10 for x in range(1, 50, 2)]


def test_union_of_three_streams(parallelism: int) -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        a = env.from_collection([1, 2, 3])
        b = env.from_source(GeneratorSource(lambda i: 100 + i, count=5))
        c = env.from_collection(["x"]).map(lambda s: s * 2)
        a.union(b, c).sink_to(sink)

    run_local(build, parallelism=parallelism)
    assert sorted(map(str, sink.committed)) == sorted(
        map(str, [1, 2, 3, 100, 101, 102, 103, 104, "xx"])
    )


def test_broadcast_delivers_to_every_subtask() -> None:
    sink = TestingSink()

    class Who(MapFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.index = runtime_context.get_index_of_this_subtask()

        def map(self, value: Any) -> Any:
            return (value, self.index)

    def build(env: StreamEnvironment) -> None:
        env.from_collection([1, 2]).broadcast().map(Who()).set_parallelism(3).sink_to(sink)

    run_local(build, parallelism=3)
    assert sorted(sink.committed) == sorted((v, i) for v in (1, 2) for i in range(3))


def test_rebalance_spreads_batches_over_subtasks() -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        env.from_collection(list(range(10_000))).rebalance().map(lambda x: x).set_parallelism(
            2
        ).sink_to(sink)

    run_local(build, parallelism=2, batch_size=100)
    assert sorted(sink.committed) == list(range(10_000))
    per_subtask = {s: sink.subtask_of.count(s) for s in set(sink.subtask_of)}
    assert set(per_subtask) == {0, 1}
    assert min(per_subtask.values()) >= 4000


def test_chaining_of_forward_edges_but_not_of_key_by() -> None:
    env = StreamEnvironment(parallelism=2)
    (
        env.from_source(GeneratorSource(lambda i: i, count=10))
        .map(lambda x: x)
        .filter(lambda x: True)
        .key_by(lambda x: x)
        .reduce(lambda a, b: a)
        .map(lambda x: x)
        .print()
    )
    graph = env.get_job_graph()
    assert [len(v.node_ids) for v in graph.vertices] == [3, 3]
    assert [e.edge.partition for e in graph.edges] == [PartitionKind.HASH]
    env.disable_operator_chaining()
    assert len(env.get_job_graph().vertices) == 6


def test_timestamps_stay_parallel_through_filter_and_flat_map(parallelism: int) -> None:
    sink = TestingSink()

    class StampOf(ProcessFunction):
        def process_element(self, value: Any, ctx: Any) -> Any:
            yield (value, ctx.timestamp())

    def build(env: StreamEnvironment) -> None:
        source = GeneratorSource(lambda i: i, count=300, timestamp_fn=lambda i: 1000 + i)
        (
            env.from_source(source)
            .filter(lambda x: x % 3 != 0)
            .flat_map(lambda x: [x, x])
            .process(StampOf())
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    assert len(sink.committed) == 2 * len([i for i in range(300) if i % 3])
    assert all(ts == 1000 + v for v, ts in sink.committed)
