"""The ``streamjob`` command: runs a job file, reports progress and errors for people."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STREAMJOB = [sys.executable, "-m", "streamjob.cli"]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    return subprocess.run(
        [*STREAMJOB, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env
    )


def test_run_wordcount_example_at_parallelism_2() -> None:
    result = _run("run", "examples/wordcount.py", "--parallelism", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(("1> ", "2> ")) for line in lines)
    finals: dict[str, int] = {}
    for line in lines:
        word, count = eval(line.split("> ", 1)[1])
        finals[word] = max(finals.get(word, 0), count)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import wordcount
    finally:
        sys.path.pop(0)
    expected: dict[str, int] = {}
    for text_line in wordcount.TEXT.splitlines():
        for word, _ in wordcount.tokenize(text_line):
            expected[word] = expected.get(word, 0) + 1
    assert finals == expected
    assert finals["to"] == 13
    assert "finished" in result.stderr


def test_progress_lines_on_long_runs(tmp_path: Path) -> None:
    job = tmp_path / "slow.py"
    job.write_text(
        "from streamjob import GeneratorSource\n"
        "from streamjob.connectors.basic_sinks import DiscardingSink\n"
        "def build(env):\n"
        "    env.from_source(GeneratorSource(lambda i: i, count=600, rate_per_second=1000))"
        ".sink_to(DiscardingSink())\n"
    )
    result = _run("run", str(job), "--progress-interval", "0.2")
    assert result.returncode == 0, result.stderr
    assert "records (" in result.stderr and "/s)" in result.stderr


def test_a_wrong_job_reference_is_a_clear_error(tmp_path: Path) -> None:
    result = _run("run", str(tmp_path / "nope.py"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_job_names_the_operator_and_exits_non_zero(tmp_path: Path) -> None:
    job = tmp_path / "bad.py"
    job.write_text(
        "def build(env):\n"
        "    env.from_collection([1, 0]).map(lambda x: 1 / x, name='Invert').print()\n"
    )
    result = _run("run", f"{job}:build")
    assert result.returncode == 1
    assert "operator 'Invert'" in result.stderr and "on record 0" in result.stderr
