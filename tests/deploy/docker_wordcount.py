"""The word count the container tests run: running counts of generated text, into a FileSink.

The image holds streamjob, not the tests: the test mounts this file into the JobManager and
TaskManager containers (read-only, the same file everywhere, as one image would) and runs
``docker_wordcount.py:build``. It imports nothing but streamjob. Its settings come from the
environment: ``STREAMJOB_WC_OUT`` (the sink's directory), ``STREAMJOB_WC_LINES``,
``STREAMJOB_WC_RATE`` (lines per second), ``STREAMJOB_WC_ROLL_BYTES`` (the part file size) and
``STREAMJOB_WC_AT_LEAST_ONCE=1`` (the at-least-once FileSink: the negative control). The test
computes the failure-free output with :func:`expected_pairs` from the same :func:`line` and
:func:`tokenize`.

Part files roll every few KiB, so the exactly-once sink keeps several pending files per
checkpoint; the negative control rolls every few hundred bytes, so the at-least-once sink
publishes almost every batch at once, and a restore surely replays records already published.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from streamjob import FileSink, GeneratorSource, StreamEnvironment

VOCABULARY = (
    "to be or not that is the question whether tis nobler in mind suffer slings and arrows "
    "of outrageous fortune take arms against a sea troubles by opposing end them die sleep"
)
WORDS = tuple(VOCABULARY.split())
WORDS_PER_LINE = 6
ROLL_SIZE_BYTES = 4096


def line(i: int) -> str:
    """Line ``i`` of the text: six words picked deterministically (no two lines alike)."""
    picks = ((i * 7 + j * 13 + (i // 5) * j) % len(WORDS) for j in range(WORDS_PER_LINE))
    return " ".join(WORDS[k].capitalize() if j == 0 else WORDS[k] for j, k in enumerate(picks))


def tokenize(text: str) -> list[tuple[str, int]]:
    words = "".join(c.lower() if c.isalpha() else " " for c in text).split()
    return [(word, 1) for word in words]


def build(env: StreamEnvironment) -> None:
    lines = int(os.environ.get("STREAMJOB_WC_LINES", "30000"))
    rate = float(os.environ.get("STREAMJOB_WC_RATE", "1500"))
    sink = FileSink(
        os.environ["STREAMJOB_WC_OUT"],
        encoder=json.dumps,
        roll_size_bytes=int(os.environ.get("STREAMJOB_WC_ROLL_BYTES", str(ROLL_SIZE_BYTES))),
        exactly_once=os.environ.get("STREAMJOB_WC_AT_LEAST_ONCE") != "1",
    )
    text = GeneratorSource(line, count=lines, rate_per_second=rate)
    (
        env.from_source(text, source_name="text")
        .uid("text")
        .flat_map(tokenize, name="tokenize")
        .key_by(lambda pair: pair[0])
        .sum(1)
        .uid("word-counts")
        .sink_to(sink)
        .uid("sink")
    )


def expected_pairs(lines: int) -> Counter[tuple[str, int]]:
    """The failure-free output: every word with each of its running counts 1..total, once."""
    totals: Counter[str] = Counter(w for i in range(lines) for w, _ in tokenize(line(i)))
    return Counter((word, n) for word, total in totals.items() for n in range(1, total + 1))
