"""Connected streams: ``CoProcessFunction``, ``KeyedCoProcessFunction`` with timers, co-map.

Aspects covered:
- a CoProcessFunction sees each input's records in its own method, with their timestamps;
- after ``connect(...).key_by(k1, k2)`` both inputs share keyed state per key, timers fire with
  the key current, and every record runs on the subtask owning its key group;
- ``map``/``flat_map`` of connected streams;
- misuse is refused when the job is built (keyed function on unkeyed inputs, one input keyed).
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob import JobDefinitionError, StreamEnvironment, WatermarkStrategy, keygroups
from streamjob.eventtime.generators import PunctuatedBoundedOutOfOrderness
from streamjob.functions import (
    CoProcessFunction,
    KeyedCoProcessFunction,
    RuntimeContext,
)
from streamjob.state import ValueStateDescriptor
from streamjob.testing import TestingSink, TestingSource, run_local


class Tag(CoProcessFunction):
    def process_element1(self, value: Any, ctx: Any) -> Any:
        yield ("left", value, ctx.timestamp())

    def process_element2(self, value: Any, ctx: Any) -> Any:
        yield ("right", value, ctx.timestamp())


def stamped(env: StreamEnvironment, items: list[Any]) -> Any:
    strategy = WatermarkStrategy.for_generator(
        lambda: PunctuatedBoundedOutOfOrderness(0)
    ).with_timestamp_assigner(lambda r, _: r[1])
    return env.from_source(TestingSource(items), strategy)


def test_co_process_function(parallelism: int) -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        left = stamped(env, [("x", 1), ("y", 2)])
        right = stamped(env, [("z", 3)])
        left.connect(right).process(Tag()).sink_to(sink)

    run_local(build, parallelism=parallelism)
    assert sorted(sink.committed) == [
        ("left", ("x", 1), 1),
        ("left", ("y", 2), 2),
        ("right", ("z", 3), 3),
    ]


class Enrich(KeyedCoProcessFunction):
    """Joins orders with the latest price of their item; unmatched orders time out."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.price = runtime_context.get_state(ValueStateDescriptor("price"))
        self.waiting = runtime_context.get_state(ValueStateDescriptor("waiting"))
        self.subtask = runtime_context.get_index_of_this_subtask()

    def process_element1(self, order: Any, ctx: Any) -> Any:
        price = self.price.value()
        if price is None:
            self.waiting.update(order)
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 10)
            return None
        return [("priced", order[0], order[2] * price, self.subtask)]

    def process_element2(self, price: Any, ctx: Any) -> Any:
        self.price.update(price[2])
        order = self.waiting.value()
        if order is not None:
            self.waiting.clear()
            ctx.timer_service().delete_event_time_timer(order[1] + 10)
            return [("priced", order[0], order[2] * price[2], self.subtask)]
        return None

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        order = self.waiting.value()
        if order is not None:
            self.waiting.clear()
            yield ("unpriced", ctx.get_current_key(), timestamp, self.subtask)


def test_keyed_co_process_function_with_state_and_timers(parallelism: int) -> None:
    orders = [("apple", 1, 2), ("pear", 2, 1), ("fig", 3, 5), ("plum", 30, 3)]
    prices = [("apple", 5, 10), ("pear", 25, 7), ("plum", 40, 1)]
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        (
            stamped(env, orders)
            .connect(stamped(env, prices))
            .key_by(lambda o: o[0], lambda p: p[0])
            .process(Enrich())
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism, max_parallelism=128)
    got = sorted(record[:3] for record in sink.committed)
    # The two sources interleave freely, but a timer fires only once the watermarks of both
    # inputs passed it: a price always arrives before its order's timer could fire, except
    # fig's, which has none.
    assert got == [
        ("priced", "apple", 20),
        ("priced", "pear", 7),
        ("priced", "plum", 3),
        ("unpriced", "fig", 13),
    ]
    for record in sink.committed:
        kg = keygroups.assign_to_key_group(record[1], 128)
        assert record[3] == keygroups.operator_index_for_key_group(128, parallelism, kg)


class Both:
    def map1(self, value: Any) -> Any:
        return ("one", value)

    def map2(self, value: Any) -> Any:
        return ("two", value)

    def flat_map1(self, value: Any) -> Any:
        return [value, value]

    def flat_map2(self, value: Any) -> Any:
        return []


def test_connected_map_and_flat_map(parallelism: int) -> None:
    mapped, flat = TestingSink(), TestingSink()

    def build(env: StreamEnvironment) -> None:
        a, b = env.from_collection([1, 2]), env.from_collection(["x"])
        a.connect(b).map(Both()).sink_to(mapped)
        a.connect(b).flat_map(Both()).sink_to(flat)

    run_local(build, parallelism=parallelism)
    assert sorted(mapped.committed, key=repr) == [("one", 1), ("one", 2), ("two", "x")]
    assert sorted(flat.committed) == [1, 1, 2, 2]


def test_connected_misuse_is_refused_when_built() -> None:
    env = StreamEnvironment()
    a, b = env.from_collection([1]), env.from_collection([2])

    class Keyed(KeyedCoProcessFunction):
        def process_element1(self, value: Any, ctx: Any) -> Any:
            return None

        def process_element2(self, value: Any, ctx: Any) -> Any:
            return None

    with pytest.raises(JobDefinitionError, match="key_by"):
        a.connect(b).process(Keyed())
    with pytest.raises(JobDefinitionError, match="only one"):
        a.key_by(lambda x: x).connect(b).process(Tag())
    with pytest.raises(JobDefinitionError, match="process_element2"):
        a.connect(b).process(lambda v, ctx: None)
    with pytest.raises(JobDefinitionError, match="map2"):
        a.connect(b).map(lambda v: v)
    with pytest.raises(JobDefinitionError, match="same environment"):
        a.connect(StreamEnvironment().from_collection([3]))
