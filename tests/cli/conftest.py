"""Fixtures of the CLI tests: the ``streamjob`` command as a subprocess, and a job file.

``streamjob(*args)`` runs ``python -m streamjob.cli`` with ``PYTHONSAFEPATH=1`` and returns the
completed process; ``background(*args)`` starts one and follows its stderr (``wait_for``
a pattern), and is killed at teardown if still running. ``job_file`` is a keyed count over a
rate-limited generator that prints ``(key, n)``; environment variables shape it: ``EVENTS``,
``RATE`` (0 = unlimited), ``CRASH_AFTER_CHECKPOINT`` (a marker path: raise once, after a
checkpoint completed under ``CHECKPOINT_DIR``).
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STREAMJOB = [sys.executable, "-m", "streamjob.cli"]

JOB = """
import glob
import os

from streamjob import GeneratorSource
from streamjob.functions import KeyedProcessFunction, MapFunction
from streamjob.state import ValueStateDescriptor

EVENTS = int(os.environ.get("EVENTS", "3000"))
RATE = float(os.environ.get("RATE", "3000")) or None
MARKER = os.environ.get("CRASH_AFTER_CHECKPOINT")
CHECKPOINTS = os.environ.get("CHECKPOINT_DIR", "")


class CountPerKey(KeyedProcessFunction):
    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))

    def process_element(self, value, ctx):
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        return ((value[0], n),)


class CrashOnce(MapFunction):
    def map(self, value):
        if MARKER and value[1] % 50 == 0 and not os.path.exists(MARKER):
            if glob.glob(os.path.join(CHECKPOINTS, "*", "chk-*", "_metadata")):
                open(MARKER, "w").close()
                raise RuntimeError(f"boom at record {value[1]}")
        return value


def build(env):
    source = GeneratorSource(lambda i: (f"k{i % 7}", i), count=EVENTS, rate_per_second=RATE)
    (
        env.from_source(source, source_name="numbers").uid("numbers")
        .map(CrashOnce()).uid("crash")
        .key_by(lambda r: r[0])
        .process(CountPerKey(), name="Count").uid("count")
        .print()
    )
"""


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "PYTHONSAFEPATH": "1", **(extra or {})}


def streamjob(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREAMJOB, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(env),
    )


def counts(stdout: str) -> dict[str, list[int]]:
    """The printed ``N> ('k3', 12)`` lines: key -> counts in order."""
    found: dict[str, list[int]] = {}
    for line in stdout.splitlines():
        key, n = ast.literal_eval(line.split("> ", 1)[1] if "> " in line else line)
        found.setdefault(key, []).append(n)
    return found


def expected_counts(events: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for i in range(events):
        totals[f"k{i % 7}"] = totals.get(f"k{i % 7}", 0) + 1
    return totals


class Background:
    """A ``streamjob`` process whose stderr is followed line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None) -> None:
        self.process = subprocess.Popen(
            [*STREAMJOB, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(env),
        )
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._follow, args=(self.process.stderr, self.stderr)),
            threading.Thread(target=self._follow, args=(self.process.stdout, self.stdout)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    def _follow(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                into.append(line)
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.stderr:
                    match = regex.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._pending()):
                    raise AssertionError(
                        f"no stderr line matching {pattern!r}; stderr:\n{''.join(self.stderr)}"
                    )
                self._changed.wait(min(left, 0.1))

    def _pending(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def until(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; stderr:\n{''.join(self.stderr)}"
            time.sleep(0.02)

    def finish(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "counting.py"
    path.write_text(JOB)
    return path


@pytest.fixture
def background() -> Iterator[Callable[..., Background]]:
    started: list[Background] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Background:
        process = Background(list(args), env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
