"""Word count: the classic streaming job, keyed running counts of words.

Run it with ``make run`` or ``streamjob run examples/wordcount.py --parallelism 2``.
Reads ``examples/data/*.txt`` if present, else a built-in text.
"""

from __future__ import annotations

import os

from streamjob import StreamEnvironment, TextFileSource

TEXT = """\
To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them. To die-to sleep,
No more; and by a sleep to say we end
The heart-ache and the thousand natural shocks
That flesh is heir to: 'tis a consummation
Devoutly to be wish'd. To die, to sleep;
To sleep, perchance to dream-ay, there's the rub:
"""

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def tokenize(line: str) -> list[tuple[str, int]]:
    words = "".join(c.lower() if c.isalpha() else " " for c in line).split()
    return [(word, 1) for word in words]


def build(env: StreamEnvironment) -> None:
    if os.path.isdir(DATA_DIR):
        lines = env.from_source(TextFileSource(DATA_DIR), source_name="Source: text files")
    else:
        lines = env.from_collection(TEXT.splitlines(), name="Source: hamlet")
    (
        lines.flat_map(tokenize, name="Tokenize")
        .key_by(lambda pair: pair[0])
        .sum(1)
        .uid("word-counts")
        .print()
    )


if __name__ == "__main__":
    env = StreamEnvironment(parallelism=2)
    build(env)
    env.execute("wordcount")
