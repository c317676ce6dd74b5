"""Fraud detection (Flink's walkthrough) with a ``KeyedProcessFunction``, keyed state and timers.

Rule: a small transaction (under 1.00) followed by a large one (over 500.00) on the same
account within one minute raises an alert. Per account the function keeps a flag (a small
transaction was seen) and the time of a timer that clears the flag one minute later. Flink's
walkthrough uses processing-time timers; this one uses event-time timers so that a run is
repeatable: the transactions carry their own time (and the rule compares it with the timer's,
since the watermark that fires the timer may come later).

Run it with ``streamjob run examples/fraud_detection.py --parallelism 2`` (or ``python
examples/fraud_detection.py``).
"""

from __future__ import annotations

from typing import Any

from streamjob import Duration, GeneratorSource, StreamEnvironment, WatermarkStrategy
from streamjob.functions import KeyedProcessFunction, RuntimeContext
from streamjob.state import ValueStateDescriptor

SMALL_AMOUNT = 1.00
LARGE_AMOUNT = 500.00
ONE_MINUTE = 60_000
ACCOUNTS = [1, 2, 3, 4, 5]
AMOUNTS = [188.23, 374.79, 0.09, 712.0, 112.15, 489.0, 0.5, 104.5, 650.0, 0.25, 99.0, 3.2]
TRANSACTIONS = 240


def transaction(i: int) -> tuple[int, float, int]:
    """(account, amount, event time in ms), a pure function of ``i``; 5 seconds apart."""
    return (ACCOUNTS[i % len(ACCOUNTS)], AMOUNTS[(i * 7) % len(AMOUNTS)], i * 5_000)


class FraudDetector(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.flag = runtime_context.get_state(ValueStateDescriptor("flag"))  # small one seen
        self.timer = runtime_context.get_state(ValueStateDescriptor("timer"))

    def process_element(self, value: Any, ctx: Any) -> Any:
        account, amount, _ = value
        timer = self.timer.value()
        if timer is not None:
            self._clean_up(ctx)
            # the timer clears the flag, but watermarks may lag: check the time as well
            if amount > LARGE_AMOUNT and ctx.timestamp() <= timer:
                yield ("alert", account, amount, ctx.timestamp())
        if amount < SMALL_AMOUNT:
            self.flag.update(True)
            timer = ctx.timestamp() + ONE_MINUTE
            ctx.timer_service().register_event_time_timer(timer)
            self.timer.update(timer)

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        self.flag.clear()
        self.timer.clear()
        return None

    def _clean_up(self, ctx: Any) -> None:
        timer = self.timer.value()
        if timer is not None:
            ctx.timer_service().delete_event_time_timer(timer)
        self.flag.clear()
        self.timer.clear()


def alerts(env: StreamEnvironment) -> Any:
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_seconds(1)
    ).with_timestamp_assigner(lambda t, _: t[2])
    # One split keeps each account's transactions in order: records of one key read by two
    # source subtasks may arrive interleaved, and the rule depends on their order.
    source = GeneratorSource(transaction, count=TRANSACTIONS, num_splits=1)
    return (
        env.from_source(source, strategy, "transactions")
        .key_by(lambda t: t[0])
        .process(FraudDetector(), name="fraud-detector")
        .uid("fraud-detector")
    )


def build(env: StreamEnvironment) -> None:
    alerts(env).print("ALERT")


if __name__ == "__main__":
    env = StreamEnvironment(parallelism=2)
    build(env)
    env.execute("fraud-detection")
