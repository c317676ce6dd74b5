"""Sources: determinism, split assignment, positions, rate limit and the testing markers.

Aspects covered: the generator covers each index exactly once at any parallelism and resumes
from a snapshot position; text files are split by file and resume at the next unread line;
TestingSource's EOF, ABORT (fires once) and PAUSE.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streamjob import GeneratorSource, StreamEnvironment, TextFileSource, errors
from streamjob.connectors.source import ReaderContext, SourceSplit, assign_splits
from streamjob.testing import ABORT, EOF, PAUSE, TestingSink, TestingSource, run_local


@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_generator_splits_cover_every_index_once(p: int) -> None:
    source = GeneratorSource(lambda i: i, count=1001)
    seen: list[int] = []
    for subtask in range(p):
        reader = source.create_reader(ReaderContext(subtask, p))
        reader.add_splits(assign_splits(source.create_splits(p), subtask, p))
        while not reader.is_finished():
            polled = reader.poll(64)
            assert polled is not None
            seen.extend(polled.records)
    assert sorted(seen) == list(range(1001))


def test_generator_resumes_from_its_position() -> None:
    source = GeneratorSource(lambda i: i * 2, count=100)
    reader = source.create_reader(ReaderContext(0, 1))
    reader.add_splits(source.create_splits(1))
    first = reader.poll(30)
    assert first is not None
    positions = reader.snapshot_splits()
    assert positions == [SourceSplit("gen-0-of-1", 30)]
    resumed = source.create_reader(ReaderContext(0, 1))
    resumed.add_splits(positions)
    rest: list[int] = []
    while not resumed.is_finished():
        polled = resumed.poll(1000)
        assert polled is not None
        rest.extend(polled.records)
    assert first.records + rest == [i * 2 for i in range(100)]


def test_generator_rate_limit_paces_the_source() -> None:
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        env.from_source(GeneratorSource(lambda i: i, count=200, rate_per_second=1000)).sink_to(sink)

    started = time.monotonic()
    run_local(build)
    elapsed = time.monotonic() - started
    assert sorted(sink.committed) == list(range(200))
    assert elapsed >= 0.15, f"200 records at 1000/s took only {elapsed:.3f}s"


def test_text_files_are_split_by_file_and_resume_at_the_next_line(tmp_path: Path) -> None:
    for name, lines in {"a.txt": ["a1", "a2", "a3"], "b.txt": ["b1", "béé"]}.items():
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = TextFileSource(str(tmp_path))
    splits = source.create_splits(2)
    assert [Path(s.split_id).name for s in splits] == ["a.txt", "b.txt"]
    reader = source.create_reader(ReaderContext(0, 1))
    reader.add_splits(splits)
    polled = reader.poll(2)
    assert polled is not None and polled.records == ["a1", "a2"]
    resumed = source.create_reader(ReaderContext(0, 1))
    resumed.add_splits(reader.snapshot_splits())
    rest = []
    while not resumed.is_finished():
        more = resumed.poll(10)
        if more:
            rest.extend(more.records)
    assert rest == ["a3", "b1", "béé"]


def test_text_file_source_names_a_missing_path() -> None:
    with pytest.raises(errors.JobDefinitionError, match="no-such-dir"):
        TextFileSource("no-such-dir").create_splits(1)


def test_testing_source_eof_ends_the_input_and_a_rerun_resumes_after_it() -> None:
    source = TestingSource([1, 2, EOF, 3, 4])
    reader = source.create_reader(ReaderContext(0, 1))
    reader.add_splits(source.create_splits(1))
    polled = reader.poll(10)
    assert polled is not None and polled.records == [1, 2]
    assert reader.is_finished()
    resumed = source.create_reader(ReaderContext(0, 1))
    resumed.add_splits(reader.snapshot_splits())
    polled = resumed.poll(10)
    assert polled is not None and polled.records == [3, 4]


def test_testing_source_abort_fires_once() -> None:
    source = TestingSource([1, ABORT, 2])
    sink = TestingSink()

    def build(env: StreamEnvironment) -> None:
        env.from_source(source).sink_to(sink)

    with pytest.raises(errors.JobFailedError, match="ABORT"):
        run_local(build)
    run_local(build)  # the abort has fired; the re-run passes it
    assert sink.committed == [1, 2]


def test_testing_source_pause_waits() -> None:
    sink = TestingSink()
    started = time.monotonic()
    run_local(lambda env: env.from_source(TestingSource([1, PAUSE(0.2), 2])).sink_to(sink))
    assert time.monotonic() - started >= 0.2
    assert sink.committed == [1, 2]
