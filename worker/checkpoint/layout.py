"""Where checkpoint files live (DESIGN.md section 6; tools and the operator read this layout).

    {checkpoint_dir}/{job_id}/chk-{n}/_metadata      JSON; its presence = checkpoint complete
    {checkpoint_dir}/{job_id}/chk-{n}/...            files owned by this checkpoint
    {checkpoint_dir}/{job_id}/shared/...             files shared across checkpoints
    {savepoint_dir}/savepoint-{job_id}-{n}/_metadata self-contained, relative paths

Keys here are relative to the job's root (or the savepoint's directory).
"""

from __future__ import annotations

import hashlib
import re
import uuid

METADATA = "_metadata"
SHARED = "shared"
_CHK = re.compile(r"^chk-(\d+)$")


def checkpoint_dir(checkpoint_id: int) -> str:
    return f"chk-{checkpoint_id}"


def metadata_key(checkpoint_id: int) -> str:
    return f"{checkpoint_dir(checkpoint_id)}/{METADATA}"


def parse_checkpoint_dir(name: str) -> int | None:
    match = _CHK.match(name)
    return int(match.group(1)) if match else None


def savepoint_name(job_id: str, checkpoint_id: int) -> str:
    return f"savepoint-{job_id}-{checkpoint_id}"


def state_file(uid: str, subtask: int, checkpoint_id: int) -> str:
    return f"{checkpoint_dir(checkpoint_id)}/{safe(uid)}-{subtask}.kg"


def native_private_file(uid: str, subtask: int, checkpoint_id: int) -> str:
    """The tar of a native snapshot's own small files (MANIFEST, CURRENT...)."""
    return f"{checkpoint_dir(checkpoint_id)}/{safe(uid)}-{subtask}.native.tar"


def shared_file(uid: str, subtask: int, name: str) -> str:
    """A new, unique name under ``shared/`` for an incremental file (SST numbers repeat across
    subtasks and restores, so the name carries a random part)."""
    return f"{SHARED}/{safe(uid)}-{subtask}-{uuid.uuid4().hex}-{name}"


def safe(uid: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", uid)
    if cleaned != uid:
        cleaned += "-" + hashlib.sha1(uid.encode()).hexdigest()[:8]  # noqa: S324 - a name
    return cleaned


def derive_job_id(checkpoint_dir_url: str) -> str:
    """A local job's id when none is given: stable for the same checkpoint directory."""
    digest = hashlib.sha256(checkpoint_dir_url.rstrip("/").encode()).hexdigest()
    return f"job-{digest[:16]}"
