"""``streamjob run`` with checkpoints: resume after a crash, restarts, Ctrl-C, bad options.

Aspects covered (the command runs as a subprocess, like a user runs it):
- a process killed with SIGKILL after a checkpoint completed resumes, on a new run with the
  same ``--checkpoint-dir``, from that checkpoint: the restore is named on stderr, the keyed
  counts continue (no key starts from 1 again) and end at the right totals, and fewer records
  are read than the total;
- a job that fails once restarts in-process (``--restart-strategy fixed-delay:2:0``) from its
  latest checkpoint; stderr names the failure, the restore and ``restarts 1``;
- progress lines show records/s, the last checkpoint and restarts; the end line the final
  state and the last checkpoint's location;
- Ctrl-C (SIGINT) cancels and exits 130;
- checkpoint options without ``--checkpoint-dir`` and a bad restart strategy are one-line
  errors (exit 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Background, counts, expected_counts, streamjob

EVENTS = 3000


def test_a_killed_run_resumes_from_its_last_checkpoint(
    job_file: Path, tmp_path: Path, background: Callable[..., Background]
) -> None:
    chk = tmp_path / "chk"
    args = [
        "run",
        str(job_file),
        "-p",
        "2",
        "--checkpoint-dir",
        str(chk),
        "--checkpoint-interval",
        "0.1",
        "--job-id",
        "counting",
        "--state-backend",
        "hashmap",
    ]
    first = background(*args, env={"EVENTS": str(EVENTS), "RATE": "2000"})
    first.until(lambda: any(chk.glob("counting/chk-*/_metadata")))
    first.kill()  # SIGKILL: no clean-up of any kind
    assert first.process.returncode == -9
    first.finish()
    before = counts("".join(first.stdout))
    second = streamjob(
        *args, "--progress-interval", "0.2", env={"EVENTS": str(EVENTS), "RATE": "0"}
    )
    assert second.returncode == 0, second.stderr
    restored = re.search(r"attempt 0: restored checkpoint (\d+) from (\S+)", second.stderr)
    assert restored is not None, second.stderr
    assert int(restored.group(1)) > 0 and restored.group(2).endswith(f"chk-{restored.group(1)}")
    after = counts(second.stdout)
    assert after and min(min(ns) for ns in after.values()) > 1, "a key started from scratch"
    finals = {key: max(before.get(key, []) + ns) for key, ns in after.items()}
    assert finals == expected_counts(EVENTS)
    end = re.search(r"finished in .*: ([\d,]+) source records", second.stderr)
    assert end is not None and 0 < int(end.group(1).replace(",", "")) < EVENTS
    assert re.search(r"last checkpoint \d+ \(.*\) at file://.*/counting/chk-\d+", second.stderr)


def test_a_failure_restarts_in_process_from_the_latest_checkpoint(
    job_file: Path, tmp_path: Path
) -> None:
    chk = tmp_path / "chk"
    result = streamjob(
        "run",
        str(job_file),
        "-p",
        "2",
        "--checkpoint-dir",
        str(chk),
        "--checkpoint-interval",
        "0.05",
        "--restart-strategy",
        "fixed-delay:2:0",
        "--progress-interval",
        "0.3",
        env={
            "EVENTS": str(EVENTS),
            "RATE": "3000",
            "CRASH_AFTER_CHECKPOINT": str(tmp_path / "crashed"),
            "CHECKPOINT_DIR": str(chk),
        },
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "crashed").exists()
    assert re.search(r"attempt 0 failed: .*boom at record \d+", result.stderr)
    assert re.search(r"attempt 1: restored checkpoint [1-9]\d* from file://", result.stderr)
    assert re.search(r"finished in .*restarts 1; last checkpoint \d+", result.stderr)
    progress = [line for line in result.stderr.splitlines() if "records (" in line]
    assert progress and all(re.search(r"/s\).*restarts \d", line) for line in progress)
    assert any(re.search(r"checkpoint \d+ \([\d.]+ (B|KiB)\)", line) for line in progress)
    finals = {key: max(ns) for key, ns in counts(result.stdout).items()}
    assert finals == expected_counts(EVENTS)


def test_ctrl_c_cancels_cleanly(
    job_file: Path, tmp_path: Path, background: Callable[..., Background]
) -> None:
    run = background(
        "run",
        str(job_file),
        "--checkpoint-dir",
        str(tmp_path / "chk"),
        "--checkpoint-interval",
        "0.1",
        "--progress-interval",
        "0.1",
        env={"EVENTS": "1000000", "RATE": "1000"},
    )
    run.wait_for(r"records \(")
    run.interrupt()
    assert run.finish() == 130
    stderr = "".join(run.stderr)
    assert "interrupted: cancelling the job" in stderr and "cancelled in" in stderr
    assert "Traceback" not in stderr


def test_checkpoint_options_need_a_checkpoint_dir(job_file: Path) -> None:
    result = streamjob("run", str(job_file), "--from-savepoint", "/tmp/sp", "--at-least-once")
    assert result.returncode == 1
    assert "--from-savepoint, --at-least-once need(s) checkpointing" in result.stderr
    assert "--checkpoint-dir" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_restart_strategy_is_a_clear_error(job_file: Path, tmp_path: Path) -> None:
    result = streamjob(
        "run", str(job_file), "--checkpoint-dir", str(tmp_path), "--restart-strategy", "often"
    )
    assert result.returncode == 1
    assert "--restart-strategy" in result.stderr and "fixed-delay" in result.stderr
