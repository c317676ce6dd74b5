"""The event-time examples run and give the right answers (at parallelism 1 and 2).

- ``examples/fraud_detection.py``: alerts equal a plain-Python reading of the rule over the
  same generated transactions;
- ``examples/windowed.py``: no click is lost: the final count of every window plus the late
  clicks add up to every click generated, whatever the watermarks' timing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from streamjob import StreamEnvironment
from streamjob.testing import TestingSink, run_local

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def expected_alerts(fraud: Any) -> list[Any]:
    flags: dict[int, int] = {}  # account -> time of the small transaction
    alerts = []
    for i in range(fraud.TRANSACTIONS):
        account, amount, ts = fraud.transaction(i)
        since = flags.pop(account, None)
        if since is not None and amount > fraud.LARGE_AMOUNT and ts <= since + fraud.ONE_MINUTE:
            alerts.append(("alert", account, amount, ts))
        if amount < fraud.SMALL_AMOUNT:
            flags[account] = ts
    return sorted(alerts)


def test_fraud_detection(parallelism: int) -> None:
    fraud = load("fraud_detection")
    sink = TestingSink()
    run_local(lambda env: fraud.alerts(env).sink_to(sink), parallelism=parallelism)
    want = expected_alerts(fraud)
    assert want, "the generated transactions should raise some alerts"
    assert sorted(sink.committed) == want


def test_windowed_clicks_are_all_counted_or_reported_late(parallelism: int) -> None:
    windowed = load("windowed")
    stats_sink, late_sink = TestingSink(), TestingSink()

    def build(env: StreamEnvironment) -> None:
        stats, late = windowed.page_stats(env)
        stats.sink_to(stats_sink)
        late.sink_to(late_sink)

    run_local(build, parallelism=parallelism)
    final: dict[tuple[str, int], int] = {}
    for row in stats_sink.committed:
        assert row["end"] - row["start"] == 10_000
        key = (row["page"], row["start"])
        final[key] = max(final.get(key, 0), row["clicks"])
    assert sum(final.values()) + len(late_sink.committed) == windowed.CLICKS
