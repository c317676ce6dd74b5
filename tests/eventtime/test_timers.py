"""Timers: the timer service and ``KeyedProcessFunction`` with timers.

Aspects covered:
- a timer is deduplicated per (key, namespace, timestamp); timers fire in timestamp order;
  a deleted timer does not fire; a timer registered or deleted while others fire is honoured;
  the current watermark is set before event-time timers fire;
- ``on_timer`` runs with the timer's key current, its time domain, and its timestamp; event-time
  outputs carry the timer's timestamp and come before the watermark that fired them;
- processing-time timers fire from the injected clock through the mailbox, never early, and
  their outputs have no timestamp; with the system clock they fire in a real run;
- keyed state is reachable from ``on_timer``; timers need a current key;
- timers are held by key group: a snapshot at parallelism 2 restored at parallelism 3 fires the
  same timers, each in the subtask that owns its key.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamjob import StreamEnvironment, WatermarkStrategy, keygroups
from streamjob.clock import ManualClock
from streamjob.errors import StateError
from streamjob.eventtime.generators import PunctuatedBoundedOutOfOrderness
from streamjob.functions import KeyedProcessFunction, RuntimeContext, TimeDomain
from streamjob.runtime.operators.keyed import KeyedProcessOperator
from streamjob.runtime.timers import InternalTimerService
from streamjob.state import ValueStateDescriptor
from streamjob.testing import PAUSE, TestingSink, TestingSource, run_local

from .harness import Harness

MIN = -(1 << 63)


def service() -> InternalTimerService:
    return InternalTimerService(
        max_parallelism=128, key_group_range=keygroups.KeyGroupRange(0, 127)
    )


def test_timers_are_deduplicated_and_fire_in_timestamp_order() -> None:
    timers = service()
    for key, ns, ts in [("a", None, 30), ("b", None, 10), ("a", None, 30), ("a", (0, 5), 30)]:
        timers.register_event_time(key, keygroups.assign_to_key_group(key, 128), ns, ts)
    timers.register_event_time("c", 1, None, 20)
    timers.delete_event_time("c", None, 20)
    fired: list[tuple[int, Any, Any]] = []
    timers.advance_watermark(25, lambda ts, key, kg, ns: fired.append((ts, key, ns)))
    assert fired == [(10, "b", None)]
    timers.advance_watermark(30, lambda ts, key, kg, ns: fired.append((ts, key, ns)))
    assert fired == [(10, "b", None), (30, "a", None), (30, "a", (0, 5))]
    assert timers.num_event_time_timers() == 0


def test_timers_registered_or_deleted_while_firing() -> None:
    timers = service()
    timers.register_event_time("a", 0, None, 10)
    timers.register_event_time("b", 0, None, 10)
    timers.register_event_time("z", 0, None, 50)
    fired: list[tuple[int, str, int]] = []

    def fire(ts: int, key: Any, kg: int, ns: Any) -> None:
        fired.append((ts, key, timers.current_watermark))
        if key == "a":
            timers.delete_event_time("b", None, 10)  # not fired yet: skipped
            timers.register_event_time("c", 0, None, 10)  # same time: fires in this round
            timers.register_event_time("d", 0, None, 5)  # earlier, still due: fires too
            timers.register_event_time("e", 0, None, 45)  # later: waits

    timers.advance_watermark(40, fire)
    assert fired == [(10, "a", 40), (10, "c", 40), (5, "d", 40)]
    timers.advance_watermark(60, fire)
    assert fired[3:] == [(45, "e", 60), (50, "z", 60)]


class TimerRecorder(KeyedProcessFunction):
    """Counts records per key in state; registers a timer ``delay`` after each record."""

    def __init__(self, domain: TimeDomain, delay: int) -> None:
        self.domain = domain
        self.delay = delay

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", default_value=0))

    def process_element(self, value: Any, ctx: Any) -> Any:
        self.count.update(self.count.value() + 1)
        timers = ctx.timer_service()
        if self.domain is TimeDomain.EVENT_TIME:
            timers.register_event_time_timer(ctx.timestamp() + self.delay)
        else:
            timers.register_processing_time_timer(timers.current_processing_time() + self.delay)
        return None

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        yield (ctx.get_current_key(), timestamp, ctx.time_domain().name, self.count.value())


def test_event_time_timers_fire_with_their_key_before_the_watermark() -> None:
    h = Harness(KeyedProcessOperator(TimerRecorder(TimeDomain.EVENT_TIME, 10)), lambda r: r[0])
    h.process([("a", 1), ("b", 1), ("a", 2)], [1, 5, 1])  # a registers 11 twice: one timer
    h.watermark(10)
    assert h.take() == []
    h.watermark(15)
    assert h.take() == [(("a", 11, "EVENT_TIME", 2), 11), (("b", 15, "EVENT_TIME", 1), 15)]
    assert h.output.watermarks == [10, 15]


def test_processing_time_timers_fire_from_the_manual_clock() -> None:
    clock = ManualClock(1000)
    h = Harness(
        KeyedProcessOperator(TimerRecorder(TimeDomain.PROCESSING_TIME, 50)),
        lambda r: r[0],
        clock=clock,
    )
    h.element(("a", 1))  # timer at 1050
    h.advance(20)
    h.element(("b", 1))  # timer at 1070
    h.advance(29)  # 1049: not yet
    assert h.take() == []
    h.advance(1)  # 1050
    assert h.take() == [(("a", 1050, "PROCESSING_TIME", 1), None)]
    h.watermark(10_000)  # event time does not fire processing-time timers
    assert h.take() == []
    h.advance(100)
    assert h.take() == [(("b", 1070, "PROCESSING_TIME", 1), None)]


class DeleteOnSecond(KeyedProcessFunction):
    def process_element(self, value: Any, ctx: Any) -> Any:
        if value[1] == "set":
            ctx.timer_service().register_processing_time_timer(100)
        else:
            ctx.timer_service().delete_processing_time_timer(100)
        return None

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        return [ctx.get_current_key()]


def test_a_deleted_processing_time_timer_does_not_fire() -> None:
    h = Harness(KeyedProcessOperator(DeleteOnSecond()), lambda r: r[0])
    h.process([("a", "set"), ("b", "set"), ("b", "delete")])
    h.advance(200)
    assert h.take() == [("a", None)]


def test_timers_need_a_current_key() -> None:
    h = Harness(KeyedProcessOperator(DeleteOnSecond()), lambda r: r[0])
    operator: Any = h.operator
    operator.backend.current_key_group = None
    with pytest.raises(StateError, match="belong to a key"):
        operator.timer_service().register_event_time_timer(5)


class Session(KeyedProcessFunction):
    """Emits (key, count) once a key has been quiet for 10 ms of event time."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", default_value=0))
        self.last = runtime_context.get_state(ValueStateDescriptor("last"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        self.count.update(self.count.value() + 1)
        last = self.last.value()
        if last is not None:
            ctx.timer_service().delete_event_time_timer(last + 10)
        self.last.update(ctx.timestamp())
        ctx.timer_service().register_event_time_timer(ctx.timestamp() + 10)
        return None

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        yield (ctx.get_current_key(), self.count.value(), timestamp, ctx.timestamp())
        self.count.clear()
        self.last.clear()


def test_keyed_process_function_with_event_time_timers_in_a_job(parallelism: int) -> None:
    # watermark = latest timestamp - 1 after each record: c's record fires a@15 and b@11
    data = [("a", 0), ("b", 1), ("a", 5), ("c", 20), ("a", 30), ("b", 40), ("a", 33)]
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        strategy = WatermarkStrategy.for_generator(
            lambda: PunctuatedBoundedOutOfOrderness(0)
        ).with_timestamp_assigner(lambda r, _: r[1])
        (
            env.from_source(TestingSource(data), strategy)
            .key_by(lambda r: r[0])
            .process(Session())
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    assert sorted(sink.committed) == [
        ("a", 2, 15, 15),
        ("a", 2, 43, 43),
        ("b", 1, 11, 11),
        ("b", 1, 50, 50),
        ("c", 1, 30, 30),
    ]


def test_processing_time_timers_fire_on_the_system_clock(parallelism: int) -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        (
            env.from_source(TestingSource([("a", 1), ("b", 2), PAUSE(0.02), PAUSE(0.15), ("c", 3)]))
            .key_by(lambda r: r[0])
            .process(TimerRecorder(TimeDomain.PROCESSING_TIME, 20))
            .sink_to(sink)
        )

    run_local(build, parallelism=parallelism)
    fired = sorted((key, domain) for key, _, domain, _ in sink.committed)
    assert ("a", "PROCESSING_TIME") in fired and ("b", "PROCESSING_TIME") in fired


def test_timers_move_with_their_key_groups_from_parallelism_2_to_3() -> None:
    keys = [f"k{i}" for i in range(40)]

    def make(subtask: int, parallelism: int) -> Harness:
        return Harness(
            KeyedProcessOperator(TimerRecorder(TimeDomain.EVENT_TIME, 100)),
            lambda r: r[0],
            subtask=subtask,
            parallelism=parallelism,
        )

    old = [make(i, 2) for i in range(2)]
    reference = make(0, 1)
    for i, key in enumerate(keys):
        for h in (*[h for h in old if h.owns((key,))], reference):
            h.element((key, 1), i)
    sections = {
        kg: h.operator.snapshot_keyed_sections(kg)  # type: ignore[attr-defined]
        for h in old
        for kg in h.key_group_range
    }
    new = [make(i, 3) for i in range(3)]
    for h in new:
        for kg in h.key_group_range:
            h.operator.restore_keyed_sections(kg, sections[kg])  # type: ignore[attr-defined]
    for h in (*new, reference):
        h.watermark(1_000)
    fired = [[r for r, _ in h.take()] for h in new]
    assert sorted(r for rs in fired for r in rs) == sorted(r for r, _ in reference.take())
    assert sum(map(len, fired)) == len(keys)
    for subtask, records in enumerate(fired):
        for key, *_ in records:
            kg = keygroups.assign_to_key_group(key, 128)
            assert keygroups.operator_index_for_key_group(128, 3, kg) == subtask
