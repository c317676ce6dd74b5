"""Reading checkpoint directories for people and tools: ``streamjob checkpoints list/inspect``.

Read-only: nothing here writes, creates or deletes (a local directory that does not exist is
an error, not created). :func:`list_checkpoints` finds, in one listing of a checkpoint
directory, every job with its completed and incomplete checkpoints (and any savepoints kept
there); :func:`inspect_checkpoint` describes one ``chk-N`` or savepoint directory from its
``_metadata``: operators, uids, parallelism, keyed states, key-group ranges per handle, file
sizes (checked against storage), incremental (RocksDB) handles with their shared and private
files, source positions and pending sink transactions. Both return
JSON-ready dicts; :mod:`.inspection_text` renders them for people. The layout is
:mod:`streamjob.checkpoint.layout` (DESIGN.md section 6).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections import defaultdict
from typing import Any

from streamjob import errors
from streamjob.checkpoint import layout, metadata
from streamjob.checkpoint.metadata import CheckpointMetadata, OperatorMetadata
from streamjob.checkpoint.operator_state import SINK, SPLITS
from streamjob.storage import CheckpointStorage, ObjectNotFound, open_storage

_SAVEPOINT = re.compile(r"^savepoint-(.+)-(\d+)$")


class InspectionError(errors.StreamJobError):
    """The path cannot be inspected; the message says why and what to try."""


def open_existing(url: str) -> CheckpointStorage:
    """The storage at ``url``, which must exist (a missing bucket or directory is an error)."""
    storage = open_storage(url)
    parsed = urllib.parse.urlsplit(storage.url)
    if parsed.scheme == "file":
        path = urllib.parse.unquote(parsed.path)
        if not os.path.isdir(path):
            raise InspectionError(
                f"{url}: no such directory" + (" (it is a file)" if os.path.exists(path) else "")
            )
    else:
        storage.check_access()  # names a missing bucket, denied credentials, a bad endpoint
    return storage


def _parent_url(url: str) -> str:
    head, _, _ = url.rstrip("/").rpartition("/")
    return head


# -- list ---------------------------------------------------------------------------------------
def _entry(storage: CheckpointStorage, name: str, files: dict[str, int]) -> dict[str, Any]:
    """One checkpoint or savepoint directory: files, bytes, and its ``_metadata`` if any."""
    entry: dict[str, Any] = {
        "name": name,
        "complete": layout.METADATA in files,
        "files": len(files),
        "size_bytes": sum(files.values()),
    }
    if entry["complete"]:
        key = f"{name}/{layout.METADATA}"
        try:
            meta = CheckpointMetadata.from_bytes(
                storage.get(key), location=storage.location_of(key)
            )
        except (errors.CheckpointCorruptError, ObjectNotFound) as exc:
            entry["error"] = str(exc)
        else:
            entry.update(
                kind=meta.kind,
                timestamp_ms=meta.timestamp_ms,
                duration_ms=meta.duration_ms,
                state_size_bytes=meta.total_size(),
            )
    return entry


def _group(keys_sizes: list[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """``a/b/c`` -> ``{"a": {"b/c": size}}`` (objects directly at the top are skipped)."""
    grouped: dict[str, dict[str, int]] = defaultdict(dict)
    for key, size in keys_sizes:
        head, _, rest = key.partition("/")
        if rest:
            grouped[head][rest] = size
    return grouped


def _job(storage: CheckpointStorage, job_id: str, objects: list[tuple[str, int]]) -> dict[str, Any]:
    dirs = _group(objects)
    chks = sorted(
        (cid, name) for name in dirs if (cid := layout.parse_checkpoint_dir(name)) is not None
    )
    entries = [_entry(storage, name, dirs[name]) | {"id": cid} for cid, name in chks]
    shared = dirs.get(layout.SHARED, {})
    return {
        "job_id": job_id,
        "location": storage.url,
        "completed": [e for e in entries if e["complete"]],
        "incomplete": [e for e in entries if not e["complete"]],
        "shared_files": len(shared),
        "shared_size_bytes": sum(shared.values()),
    }


def _is_job_dir(objects: list[tuple[str, int]]) -> bool:
    return any(layout.parse_checkpoint_dir(key.partition("/")[0]) is not None for key, _ in objects)


def list_checkpoints(url: str, *, job_id: str | None = None) -> dict[str, Any]:
    """Jobs under a checkpoint directory (or ``url`` itself when it is a job's directory),
    each with its completed and incomplete checkpoints, and any savepoints kept there."""
    storage = open_existing(url)
    objects = [(o.key, o.size) for o in storage.list(f"{job_id}/" if job_id else "")]
    jobs: list[dict[str, Any]] = []
    savepoints: list[dict[str, Any]] = []
    if job_id is None and _is_job_dir(objects):
        name = storage.url.rstrip("/").rpartition("/")[2]
        jobs.append(_job(storage, name, objects))
    else:
        for top, below in sorted(_group(objects).items()):
            children = list(below.items())
            savepoint = _SAVEPOINT.match(top)
            if savepoint is not None:
                found = _entry(storage, top, below)
                savepoints.append(found | {"job_id": savepoint.group(1)})
            elif _is_job_dir(children) or any(k.startswith(f"{layout.SHARED}/") for k in below):
                jobs.append(_job(storage.child(top), top, children))
    if job_id and not jobs:
        raise InspectionError(f"no checkpoints of job {job_id!r} under {storage.url}")
    return {"location": storage.url, "jobs": jobs, "savepoints": savepoints}


# -- inspect ------------------------------------------------------------------------------------
def _operator(op: OperatorMetadata) -> dict[str, Any]:
    described: dict[str, Any] = {
        "uid": op.uid,
        "name": op.name,
        "parallelism": op.parallelism,
        "max_parallelism": op.max_parallelism,
        "keyed_states": op.keyed_states,
        "state_size_bytes": op.state_size(),
        "handles": [
            {
                "subtask": h.subtask,
                "key_group_range": list(h.key_group_range),
                "key_groups_with_state": len(h.offsets),
                "path": h.path,
                "size_bytes": h.size,
            }
            for h in op.keyed_handles
        ],
        "incremental_handles": [
            {
                "subtask": h.subtask,
                "key_group_range": list(h.key_group_range),
                "backend": h.backend,
                "base_checkpoint_id": h.base_checkpoint_id,
                "shared_files": len(h.shared),
                "shared_size_bytes": sum(f.size for f in h.shared),
                "private_files": len(h.private),
                "private_size_bytes": sum(f.size for f in h.private),
                "sections_path": None if h.sections is None else h.sections.path,
                "sections_size_bytes": 0 if h.sections is None else h.sections.size,
                "size_bytes": h.size,
            }
            for h in op.incremental_handles
        ],
        "operator_state": {
            name: {"mode": entry.mode, "elements": [len(part) for part in entry.per_subtask]}
            for name, entry in sorted(op.operator_state.items())
        },
    }
    splits = op.operator_state.get(SPLITS)
    if splits is not None:
        described["source_positions"] = [
            {"subtask": i, "split": str(split[0]), "position": split[1]}
            for i, part in enumerate(splits.per_subtask)
            for split in part
            if isinstance(split, list | tuple) and len(split) == 2
        ]
    transactions = op.operator_state.get(SINK)
    if transactions is not None:
        described["pending_sink_transactions"] = len(transactions.all_elements())
    return described


def _no_metadata_hint(storage: CheckpointStorage) -> str:
    if layout.parse_checkpoint_dir(storage.url.rstrip("/").rpartition("/")[2]) is not None:
        return "the checkpoint is incomplete (its _metadata is written last, when it completes)"
    try:
        below = {o.key.split("/")[0] for _, o in zip(range(1000), storage.list(""), strict=False)}
    except errors.StreamJobError:
        below = set()
    if any(layout.parse_checkpoint_dir(name) is not None for name in below):
        return "this is a job's directory: inspect one of its chk-N directories"
    if below:
        return "this looks like a checkpoint directory: 'streamjob checkpoints list' shows its jobs"
    return "the directory is empty"


def _read_metadata(storage: CheckpointStorage, url: str) -> tuple[CheckpointMetadata, int]:
    try:
        data = storage.get(layout.METADATA)
    except ObjectNotFound:
        raise InspectionError(
            f"{url} has no {layout.METADATA}, so it is not a completed checkpoint or a "
            f"savepoint: {_no_metadata_hint(storage)}"
        ) from None
    meta = CheckpointMetadata.from_bytes(data, location=storage.location_of(layout.METADATA))
    return meta, len(data)


def _check_files(meta: CheckpointMetadata, root: CheckpointStorage) -> list[dict[str, Any]]:
    files = []
    for path, size in meta.files():
        try:
            actual = root.size(path)
        except ObjectNotFound:
            status = "missing"
        else:
            status = "ok" if actual == size else f"size differs: {actual} bytes on storage"
        files.append({"path": path, "size_bytes": size, "status": status})
    return files


def inspect_checkpoint(url: str) -> dict[str, Any]:
    storage = open_existing(url)
    meta, metadata_size = _read_metadata(storage, url)
    # A checkpoint's paths are relative to its job's directory, a savepoint's to itself.
    is_chk = layout.parse_checkpoint_dir(storage.url.rstrip("/").rpartition("/")[2]) is not None
    root = (
        open_storage(_parent_url(storage.url)) if is_chk and meta.kind != "savepoint" else storage
    )
    files = _check_files(meta, root)
    problems = [
        f"{root.location_of(f['path'])}: {f['status']}" for f in files if f["status"] != "ok"
    ]
    return {
        "location": storage.url,
        "format_version": metadata.VERSION,
        "job_id": meta.job_id,
        "checkpoint_id": meta.checkpoint_id,
        "kind": meta.kind,
        "timestamp_ms": meta.timestamp_ms,
        "duration_ms": meta.duration_ms,
        "graph_fingerprint": meta.graph_fingerprint,
        "state_size_bytes": meta.total_size(),
        "metadata_size_bytes": metadata_size,
        "operators": [_operator(op) for op in meta.operators],
        "files": files,
        "problems": problems,
    }
