"""The exactly-once file sink's writer, driven by hand, on a local directory and on SeaweedFS.

Aspects covered (each on both backends unless said):

* in-progress -> pending -> finished: nothing is visible before the checkpoint completes, the
  part file is one multipart upload, and it appears whole on commit;
* a part is uploaded whenever the buffer reaches the part size (several parts per file), and
  files roll at the roll size (several files per transaction);
* part files are named ``{prefix}-{attempt_id}-{subtask}-{counter}``; descriptors are small
  JSON without records;
* a new process commits the restored transactions from their descriptors, and committing them
  again (a second restore) neither fails nor duplicates;
* on restore, writer 0 aborts what the crashed attempt left (in-progress files, pending files
  of a checkpoint that never completed) and keeps the restored and the current attempt's;
* without checkpointing, rolled files finish at once and ``finish`` finishes the rest; an
  empty transaction creates no file; ``close`` after a failure aborts the in-progress file;
* the at-least-once variant writes finished files directly; bad arguments are refused.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamjob.connectors.file_sink import FileSink, FileSinkWriter
from streamjob.connectors.sink import SinkContext, SinkWriter
from streamjob.storage import base
from tests.connectors.conftest import SinkLocation

MiB = 1024 * 1024


def _context(
    subtask: int = 0,
    parallelism: int = 1,
    *,
    attempt: int = 0,
    checkpointing: bool = True,
    restored: list[Any] | None = None,
) -> SinkContext:
    return SinkContext(
        subtask,
        parallelism,
        attempt,
        checkpointing,
        restored_state=restored,
        attempt_id=f"run{attempt}",
    )


def _rows(n: int, start: int = 0) -> list[list[Any]]:
    return [["k", i] for i in range(start, start + n)]


def test_a_part_file_is_invisible_until_its_checkpoint_completes(
    sink_location: SinkLocation,
) -> None:
    writer = sink_location.file_sink().create_writer(_context())
    writer.write_batch(_rows(3), None)
    assert sink_location.in_progress_uploads() == ["part-run0-0-0"]
    state = writer.snapshot_state(1)
    assert sink_location.finished_files() == {}
    assert sink_location.in_progress_uploads() == ["part-run0-0-0"]  # pending: sealed upload

    writer.notify_checkpoint_complete(1)
    assert sink_location.finished_rows() == [("k", 0), ("k", 1), ("k", 2)]
    assert sink_location.in_progress_uploads() == []
    descriptor = state[0]["descriptor"]
    assert len(json.dumps(state)) < 600  # no records in the checkpoint
    assert [f["key"] for f in descriptor["files"]] == ["part-run0-0-0"]
    writer.close()


def test_parts_are_uploaded_as_the_buffer_fills_and_files_roll(
    sink_location: SinkLocation,
) -> None:
    sink = sink_location.file_sink(encoder=str, roll_size_bytes=12 * MiB)
    writer = sink.create_writer(_context())
    line = "x" * (MiB - 1)  # one MiB per record with its newline
    for _ in range(14):
        writer.write_batch([line], None)
    # 5 MiB parts: part-0 has two parts and rolled at 12 MiB (12 = 5 + 5 + 2), part-1 is open
    state = writer.snapshot_state(1)
    files = state[0]["descriptor"]["files"]
    assert [f["key"] for f in files] == ["part-run0-0-0", "part-run0-0-1"]
    assert [[p["size"] for p in f["parts"]] for f in files] == [
        [5 * MiB, 5 * MiB, 2 * MiB],
        [2 * MiB],
    ]
    writer.notify_checkpoint_complete(1)
    finished = sink_location.finished_files()
    assert {k: len(v) for k, v in finished.items()} == {
        "part-run0-0-0": 12 * MiB,
        "part-run0-0-1": 2 * MiB,
    }
    assert finished["part-run0-0-0"] == (line + "\n").encode() * 12
    writer.close()


def test_a_new_process_commits_the_restored_transactions_once(
    sink_location: SinkLocation,
) -> None:
    sink = sink_location.file_sink()
    union: list[Any] = []
    for subtask in range(2):  # the old attempt at parallelism 2
        writer = sink.create_writer(_context(subtask, 2))
        writer.write_batch(_rows(2, start=10 * subtask), None)
        union.extend(writer.snapshot_state(1))  # checkpoint 1 completes, then a crash
    assert sink_location.finished_files() == {}

    for attempt in (1, 2):  # restored at parallelism 3, twice (a second failure)
        for subtask in range(3):
            sink.create_writer(_context(subtask, 3, attempt=attempt, restored=union)).close()
    assert sorted(sink_location.finished_rows()) == [
        ("k", 0),
        ("k", 1),
        ("k", 10),
        ("k", 11),
    ]
    assert sink_location.in_progress_uploads() == []


def test_writer_0_aborts_what_the_crashed_attempt_left(sink_location: SinkLocation) -> None:
    sink = sink_location.file_sink()
    crashed = sink.create_writer(_context(0, 2))
    crashed.write_batch(_rows(1), None)
    restored = crashed.snapshot_state(1)  # completes
    crashed.write_batch(_rows(1, start=1), None)
    crashed.snapshot_state(2)  # never completes: pending upload left behind
    crashed.write_batch(_rows(1, start=2), None)  # in progress when the process died
    assert len(sink_location.in_progress_uploads()) == 3

    writer_1 = sink.create_writer(_context(1, 2, attempt=1, restored=restored))
    writer_1.write_batch(_rows(1, start=100), None)  # the new attempt's own upload
    writer_0 = sink.create_writer(_context(0, 2, attempt=1, restored=restored))
    assert sink_location.in_progress_uploads() == ["part-run1-1-0"]
    assert sink_location.finished_rows() == [("k", 0)]
    for writer in (writer_0, writer_1):
        writer.close()
    assert sink_location.in_progress_uploads() == []  # close aborted the open one


def test_without_checkpointing_rolled_files_finish_at_once(sink_location: SinkLocation) -> None:
    sink = sink_location.file_sink(roll_size_bytes=20)
    writer = sink.create_writer(_context(checkpointing=False))
    writer.write_batch(_rows(3), None)  # 3 x 9 bytes: rolls
    assert sink_location.finished_rows() == [("k", 0), ("k", 1), ("k", 2)]
    writer.write_batch(_rows(1, start=3), None)
    writer.finish()
    writer.close()
    assert sorted(sink_location.finished_files()) == ["part-run0-0-0", "part-run0-0-1"]
    assert len(sink_location.finished_rows()) == 4
    assert sink_location.in_progress_uploads() == []


def test_empty_transactions_create_no_file(tmp_path: Any) -> None:
    location = SinkLocation("local", str(tmp_path / "out"))
    writer = location.file_sink().create_writer(_context())
    writer.write_batch([], None)
    assert writer.snapshot_state(1) == []
    writer.notify_checkpoint_complete(1)
    writer.finish()
    assert writer.snapshot_state(2) == []
    writer.close()
    assert location.finished_files() == {}
    assert location.in_progress_uploads() == []


def test_the_writer_is_the_two_phase_one(tmp_path: Any) -> None:
    sink = FileSink(str(tmp_path))
    writer = sink.create_writer(_context())
    assert isinstance(writer, FileSinkWriter)
    writer.close()


def test_the_at_least_once_variant_writes_finished_files_directly(
    sink_location: SinkLocation,
) -> None:
    sink = sink_location.file_sink(exactly_once=False)
    writer: SinkWriter = sink.create_writer(_context())
    writer.write_batch(_rows(2), None)
    assert writer.snapshot_state(1) is None  # nothing to commit later: already finished
    assert sink_location.finished_rows() == [("k", 0), ("k", 1)]
    assert sink_location.in_progress_uploads() == []
    writer.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"part_size_bytes": MiB}, "at least"),
        ({"roll_size_bytes": 0}, "positive"),
        ({"part_prefix": "../up"}, "'..'"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, base.errors.InvalidKey), match=message):
        FileSink("out", **kwargs)
