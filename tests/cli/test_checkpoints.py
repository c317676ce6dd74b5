"""``streamjob checkpoints list`` and ``inspect`` on real checkpoint directories.

Aspects covered (a checkpointed CLI run at parallelism 2 makes the directory):
- ``list`` names the job, its completed checkpoints (ids, sizes, times, the latest's path) and
  incomplete ones, also when given the job's own directory; ``--json`` agrees with the files;
- ``inspect`` shows every operator with uid, parallelism, max parallelism, keyed states, the
  key-group range and file of each subtask's handle (RocksDB: its shared and private files),
  source positions and the pending sink transactions count; ``--json`` ranges tile [0, 127]
  and sizes equal the files on disk;
- errors for people: a directory without ``_metadata`` (the root, a job's directory, an
  incomplete checkpoint: each with its hint), a corrupt ``_metadata``, a missing directory, a
  missing state file (exit 1, the file named), an unknown job id;
- S3: a run checkpoints into a bucket (moto) and both commands read it; a missing bucket is an
  error naming it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from streamjob.storage import options, s3
from tests.cli.conftest import JOB, streamjob

BUCKET = "cli-checkpoints"


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint directory with three retained checkpoints of job ``counting``."""
    root = tmp_path_factory.mktemp("cli-chk")
    (root / "counting.py").write_text(JOB)
    result = streamjob(
        "run",
        str(root / "counting.py"),
        "-p",
        "2",
        "--checkpoint-dir",
        str(root / "chk"),
        "--checkpoint-interval",
        "0.1",
        "--retained",
        "3",
        "--job-id",
        "counting",
        env={"EVENTS": "2000", "RATE": "4000"},
    )
    assert result.returncode == 0, result.stderr
    return root / "chk"


def _chks(directory: Path) -> list[Path]:
    return sorted(directory.glob("counting/chk-*"), key=lambda p: int(p.name[4:]))


def test_list_names_jobs_and_checkpoints(checkpointed: Path) -> None:
    result = streamjob("checkpoints", "list", str(checkpointed))
    assert result.returncode == 0, result.stderr
    chks = _chks(checkpointed)
    assert len(chks) == 3
    assert "job counting: 3 completed, 0 incomplete" in result.stdout
    for chk in chks:
        assert f"{chk.name} " in result.stdout
    assert f"latest: {chks[-1].as_uri()}" in result.stdout
    assert "checkpoint  20" in result.stdout  # ISO times: 20xx-...
    own = streamjob("checkpoints", "list", str(checkpointed / "counting"))
    assert own.returncode == 0 and "job counting: 3 completed" in own.stdout


def test_list_json_agrees_with_the_files(checkpointed: Path) -> None:
    result = streamjob("checkpoints", "list", str(checkpointed), "--json", "--job-id", "counting")
    assert result.returncode == 0, result.stderr
    (job,) = json.loads(result.stdout)["jobs"]
    assert job["job_id"] == "counting" and job["incomplete"] == []
    on_disk = {
        chk.name: sum(f.stat().st_size for f in chk.iterdir()) for chk in _chks(checkpointed)
    }
    assert {c["name"]: c["size_bytes"] for c in job["completed"]} == on_disk
    assert [c["id"] for c in job["completed"]] == sorted(int(n[4:]) for n in on_disk)
    assert all(c["kind"] == "checkpoint" and c["timestamp_ms"] > 0 for c in job["completed"])
    unknown = streamjob("checkpoints", "list", str(checkpointed), "--job-id", "other")
    assert unknown.returncode == 1 and "no checkpoints of job 'other'" in unknown.stderr


def test_list_shows_incomplete_and_unreadable_checkpoints(
    checkpointed: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "chk"
    shutil.copytree(checkpointed, copy)
    latest = _chks(copy)[-1]
    shutil.copytree(latest, latest.parent / "chk-998")
    (latest.parent / "chk-998" / "_metadata").write_bytes(b"\x00garbage")
    shutil.copytree(latest, latest.parent / "chk-999")
    (latest.parent / "chk-999" / "_metadata").unlink()
    result = streamjob("checkpoints", "list", str(copy))
    assert result.returncode == 0, result.stderr
    assert "4 completed, 1 incomplete" in result.stdout
    assert "chk-998" in result.stdout and "UNREADABLE" in result.stdout
    assert "chk-999" in result.stdout and "incomplete (no _metadata" in result.stdout


def test_inspect_describes_operators_states_and_files(checkpointed: Path) -> None:
    latest = _chks(checkpointed)[-1]
    result = streamjob("checkpoints", "inspect", str(latest))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"checkpoint {latest.name[4:]} of job counting")
    assert "uid='numbers'" in out and "uid='count'" in out and "uid='crash'" in out
    assert "parallelism 2, max parallelism 128" in out
    assert "keyed states: count (value, pickle v1)" in out
    assert "key groups     0-63" in out and "key groups    64-127" in out
    assert "source split gen-0-of-2 at position" in out
    assert "pending sink transactions: 0" in out
    assert "files: all 2 present with their recorded sizes" in out


def test_inspect_json(checkpointed: Path) -> None:
    latest = _chks(checkpointed)[-1]
    result = streamjob("checkpoints", "inspect", str(latest), "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["kind"] == "checkpoint" and found["job_id"] == "counting"
    assert found["problems"] == []
    ops = {op["uid"]: op for op in found["operators"]}
    count = ops["count"]
    assert (count["parallelism"], count["max_parallelism"]) == (2, 128)
    assert [s["name"] for s in count["keyed_states"]] == ["count"]
    ranges = sorted(tuple(h["key_group_range"]) for h in count["handles"])
    assert ranges == [(0, 63), (64, 127)]
    for handle in count["handles"]:
        assert handle["size_bytes"] == (checkpointed / "counting" / handle["path"]).stat().st_size
    positions = ops["numbers"]["source_positions"]
    assert sorted(p["split"] for p in positions) == ["gen-0-of-2", "gen-1-of-2"]
    assert sum(p["position"] for p in positions) == 2000  # the final checkpoint: input ended
    assert {f["status"] for f in found["files"]} == {"ok"}


def test_inspect_a_rocksdb_checkpoint(job_file: Path, tmp_path: Path) -> None:
    chk = tmp_path / "chk"
    run = streamjob(
        "run", str(job_file), "-p", "2", "--checkpoint-dir", str(chk), "--job-id", "rocks",
        "--state-backend", "rocksdb", env={"EVENTS": "1000", "RATE": "0"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (latest,) = chk.glob("rocks/chk-*")
    listing = streamjob("checkpoints", "list", str(chk))
    assert listing.returncode == 0 and "shared" in listing.stdout
    found = streamjob("checkpoints", "inspect", str(latest), "--json")
    assert found.returncode == 0, found.stderr
    count = next(op for op in json.loads(found.stdout)["operators"] if op["uid"] == "count")
    handles = count["incremental_handles"]
    assert sorted(tuple(h["key_group_range"]) for h in handles) == [(0, 63), (64, 127)]
    assert all(h["backend"] == "rocksdb" and h["shared_files"] > 0 for h in handles)
    text = streamjob("checkpoints", "inspect", str(latest)).stdout
    assert "rocksdb full:" in text and "shared files" in text


@pytest.mark.parametrize(
    ("where", "hint"),
    [
        ("", "'streamjob checkpoints list' shows its jobs"),
        ("counting", "inspect one of its chk-N directories"),
        ("counting/chk-999", "the checkpoint is incomplete"),
    ],
)
def test_inspect_a_path_without_metadata(
    checkpointed: Path, tmp_path: Path, where: str, hint: str
) -> None:
    copy = tmp_path / "chk"
    shutil.copytree(checkpointed, copy)
    (copy / "counting" / "chk-999").mkdir()
    (copy / "counting" / "chk-999" / "x.kg").write_bytes(b"partial")
    result = streamjob("checkpoints", "inspect", str(copy / where))
    assert result.returncode == 1
    assert "has no _metadata" in result.stderr and hint in result.stderr
    assert "Traceback" not in result.stderr


def test_inspect_corrupt_missing_and_damaged(checkpointed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "chk"
    shutil.copytree(checkpointed, copy)
    first, second, latest = _chks(copy)
    (first / "_metadata").write_text('{"format": "streamjob-checkpoint", "version": 1}')
    corrupt = streamjob("checkpoints", "inspect", str(first))
    assert corrupt.returncode == 1 and "missing or has a malformed field" in corrupt.stderr
    (second / "_metadata").write_bytes(b"\xff\xfe not json")
    garbage = streamjob("checkpoints", "inspect", str(second))
    assert garbage.returncode == 1 and "not valid checkpoint metadata JSON" in garbage.stderr
    state_file = next(latest.glob("count-1.kg"))
    state_file.unlink()
    damaged = streamjob("checkpoints", "inspect", str(latest))
    assert damaged.returncode == 1
    assert "PROBLEMS (1)" in damaged.stdout and f"{state_file.name}: missing" in damaged.stdout
    missing = streamjob("checkpoints", "inspect", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "no such directory" in missing.stderr
    listing = streamjob("checkpoints", "list", str(tmp_path / "nowhere"))
    assert listing.returncode == 1 and "no such directory" in listing.stderr


# -- S3 -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_env() -> Iterator[dict[str, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = s3.make_client(
        options.S3Options(
            endpoint_url=endpoint,
            region="us-east-1",
            path_style=True,
            access_key_id="testing",
            secret_access_key="testing",
        )
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "1",
        }
    finally:
        server.stop()


def test_list_and_inspect_on_s3(job_file: Path, moto_env: dict[str, str]) -> None:
    url = f"s3://{BUCKET}/checkpoints"
    run = streamjob(
        "run",
        str(job_file),
        "-p",
        "2",
        "--checkpoint-dir",
        url,
        "--checkpoint-interval",
        "0.2",
        "--job-id",
        "on-s3",
        env={**moto_env, "EVENTS": "1000", "RATE": "0"},
    )
    assert run.returncode == 0, run.stderr
    listing = streamjob("checkpoints", "list", url, "--json", env=moto_env)
    assert listing.returncode == 0, listing.stderr
    (job,) = json.loads(listing.stdout)["jobs"]
    assert job["job_id"] == "on-s3" and job["location"] == f"{url}/on-s3"
    latest = job["completed"][-1]
    found = streamjob(
        "checkpoints", "inspect", f"{url}/on-s3/{latest['name']}", "--json", env=moto_env
    )
    assert found.returncode == 0, found.stderr
    described = json.loads(found.stdout)
    assert described["checkpoint_id"] == latest["id"] and described["problems"] == []
    assert {f["status"] for f in described["files"]} == {"ok"}


def test_a_missing_bucket_is_named(moto_env: dict[str, str]) -> None:
    for command in (
        ["list", "s3://no-such-bucket/chk"],
        ["inspect", "s3://no-such-bucket/c/chk-1"],
    ):
        result = streamjob("checkpoints", *command, env=moto_env)
        assert result.returncode == 1, result.stdout
        assert "no-such-bucket" in result.stderr and "Traceback" not in result.stderr
