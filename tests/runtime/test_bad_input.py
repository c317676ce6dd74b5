"""Bad input gets a clear error and nothing hangs.

Aspects covered: a user function that raises names the operator, the record and the user's
line; unusable keys (float, bool, None, unhashable); job references that cannot be loaded; jobs
without a sink; impossible parallelism; a failing subtask fails the whole job even while other
subtasks are blocked on backpressure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamjob import GeneratorSource, StreamEnvironment, errors
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter
from streamjob.jobref import load_job
from streamjob.testing import TestingSink, run_local


def _failure(build: Any, parallelism: int = 1) -> BaseException:
    with pytest.raises(errors.JobFailedError) as info:
        run_local(build, parallelism=parallelism)
    cause = info.value.__cause__
    assert cause is not None
    return cause


def test_a_raising_map_names_operator_record_and_line(parallelism: int) -> None:
    def explode(x: int) -> float:
        return 1 / (x - 7)  # the user's line

    def build(env: StreamEnvironment) -> None:
        env.from_source(GeneratorSource(lambda i: i, count=20)).map(explode, name="Invert").sink_to(
            TestingSink()
        )

    cause = _failure(build, parallelism)
    assert isinstance(cause, errors.UserFunctionError)
    text = str(cause)
    assert "operator 'Invert'" in text
    assert "on record 7" in text
    assert "ZeroDivisionError" in text
    assert "test_bad_input.py" in text and "return 1 / (x - 7)" in text


@pytest.mark.parametrize(
    ("key", "fragment"),
    [(1.5, "float"), (True, "bool"), (None, "NoneType"), ([1], "list")],
)
def test_unusable_keys_are_refused_clearly(key: Any, fragment: str) -> None:
    def build(env: StreamEnvironment) -> None:
        env.from_collection([1, 2]).key_by(lambda _: key).reduce(lambda a, b: a).sink_to(
            TestingSink()
        )

    cause = _failure(build)
    assert isinstance(cause, errors.KeyTypeError)
    assert fragment in str(cause)
    assert "key" in str(cause)


def test_a_raising_key_selector_names_the_record() -> None:
    def build(env: StreamEnvironment) -> None:
        env.from_collection([{"id": 1}, {"name": "x"}]).key_by(lambda r: r["id"]).reduce(
            lambda a, b: a
        ).sink_to(TestingSink())

    cause = _failure(build)
    assert "key selector" in str(cause) and "{'name': 'x'}" in str(cause)


def test_a_job_without_sink_is_refused() -> None:
    env = StreamEnvironment()
    env.from_collection([1]).map(lambda x: x)
    with pytest.raises(errors.JobDefinitionError, match="no sink"):
        env.get_job_graph()


def test_parallelism_above_max_parallelism_is_refused() -> None:
    env = StreamEnvironment(parallelism=8, max_parallelism=4)
    env.from_collection([1]).map(lambda x: x).print()
    with pytest.raises(errors.JobDefinitionError, match="max_parallelism 4"):
        env.get_job_graph()


def test_forward_between_different_parallelism_is_refused() -> None:
    env = StreamEnvironment(parallelism=2)
    env.from_source(GeneratorSource(lambda i: i, count=1)).forward().map(
        lambda x: x
    ).set_parallelism(3).print()
    with pytest.raises(errors.JobDefinitionError, match="forward"):
        env.get_job_graph()


def test_non_callable_functions_are_refused_when_building() -> None:
    env = StreamEnvironment()
    with pytest.raises(errors.JobDefinitionError, match="map"):
        env.from_collection([1]).map(42)


class _FailAfter(Sink):
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def create_writer(self, context: SinkContext) -> SinkWriter:
        sink = self

        class Writer(SinkWriter):
            seen = 0

            def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
                self.seen += len(records)
                if context.subtask_index == 0 and self.seen > sink.limit:
                    raise RuntimeError("disk full")

        return Writer()


@pytest.mark.timeout(20)
def test_a_failing_subtask_fails_the_job_while_others_are_back_pressured() -> None:
    def build(env: StreamEnvironment) -> None:
        env.from_source(GeneratorSource(lambda i: i)).key_by(lambda x: x % 10).map(
            lambda x: x
        ).sink_to(_FailAfter(5000))

    cause = _failure(build, parallelism=2)
    assert "disk full" in str(cause)


def test_job_references_say_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(errors.JobReferenceError, match="does not exist"):
        load_job(str(tmp_path / "missing.py"))
    with pytest.raises(errors.JobReferenceError, match="cannot import module 'no_such_mod"):
        load_job("no_such_mod_xyz:build")
    job = tmp_path / "job.py"
    job.write_text("def helper(env):\n    pass\n\ndef two(a, b):\n    pass\n")
    with pytest.raises(errors.JobReferenceError, match="functions it has: helper, two"):
        load_job(f"{job}:nope")
    with pytest.raises(errors.JobReferenceError, match="exactly one argument"):
        load_job(f"{job}:two")
    assert load_job(f"{job}:helper").__name__ == "helper"
