"""Incremental checkpoints on the task side: uploading native snapshots, and restoring them.

A backend that can take native snapshots (RocksDB) satisfies :class:`NativeBackend`; the
checkpoint layer never imports it. For each keyed operator of a task:

1. at barrier *n* (a checkpoint, not a savepoint), the backend writes its cache back and takes
   a local native checkpoint (:meth:`NativeBackend.native_checkpoint`);
2. in the upload thread, :func:`upload` puts each shared (SST) file that the operator's
   :class:`UploadTracker` base does not hold under a new unique name in ``shared/``, reuses the
   base's upload for the others, and puts the small private files as one tar under ``chk-n/``
   (one request instead of five); the local checkpoint directory is then removed;
3. the uploads become the base of later checkpoints only when checkpoint *n* is notified
   complete (:meth:`UploadTracker.notify_complete`): a task bases an incremental checkpoint
   only on checkpoints it was notified about (DESIGN.md section 6 step 4).

Restoring (:func:`restore`): every old native handle whose key groups intersect the subtask's
is downloaded into a directory of its own, then the backend rebuilds its database from them;
the handle it adopted whole seeds the tracker, so the next checkpoint re-uploads nothing it
restored. A backend without native snapshots cannot read them: the error says to switch
backends through a savepoint.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from streamjob import errors, keygroups
from streamjob.checkpoint import layout
from streamjob.checkpoint.metadata import (
    IncrementalKeyedStateHandle,
    KeyedStateHandle,
    OperatorMetadata,
    StateFile,
)
from streamjob.storage.base import CheckpointStorage

DOWNLOAD_THREADS = 4
PRIVATE_BUNDLE = "private.tar"


class NativeCheckpoint(Protocol):
    """A local native snapshot: ``(name, size)`` of its shared and private files."""

    @property
    def directory(self) -> str: ...

    @property
    def shared(self) -> tuple[tuple[str, int], ...]: ...

    @property
    def private(self) -> tuple[tuple[str, int], ...]: ...

    def discard(self) -> None: ...


@runtime_checkable
class NativeBackend(Protocol):
    """What the checkpoint layer needs of a keyed backend with native snapshots."""

    native_format: str

    def native_checkpoint(self, checkpoint_id: int) -> NativeCheckpoint: ...

    def without_state_in_blobs(self) -> AbstractContextManager[None]: ...

    def restore_directory(self, index: int) -> str: ...

    def restore_native(self, downloads: Sequence[tuple[str, keygroups.KeyGroupRange]]) -> int: ...


def native_backend(op: Any) -> NativeBackend | None:
    backend = getattr(op, "backend", None)
    return backend if isinstance(backend, NativeBackend) else None


@dataclass(frozen=True)
class UploadBase:
    """Shared files a checkpoint may reuse: those of the last checkpoint notified complete."""

    checkpoint_id: int | None = None
    files: dict[str, StateFile] = field(default_factory=dict)


class UploadTracker:
    """The shared uploads of one operator subtask, pending until their checkpoint completes."""

    def __init__(self) -> None:
        self.base = UploadBase()
        self._pending: dict[int, dict[str, StateFile]] = {}

    def uploaded(self, checkpoint_id: int, handle: IncrementalKeyedStateHandle) -> None:
        self._pending[checkpoint_id] = {f.name: f for f in handle.shared}

    def notify_complete(self, checkpoint_id: int) -> None:
        files = self._pending.pop(checkpoint_id, None)
        if files is not None:
            self.base = UploadBase(checkpoint_id, files)
        for older in [c for c in self._pending if c < checkpoint_id]:
            del self._pending[older]

    def notify_aborted(self, checkpoint_id: int) -> None:
        self._pending.pop(checkpoint_id, None)

    def seed(self, checkpoint_id: int, handle: IncrementalKeyedStateHandle) -> None:
        """After a restore: the restored database holds these files under these names."""
        self.base = UploadBase(checkpoint_id, {f.name: f for f in handle.shared})


@dataclass(frozen=True)
class NativeUpload:
    """Where one operator subtask's native snapshot goes."""

    uid: str
    subtask: int
    checkpoint_id: int
    key_group_range: tuple[int, int]
    backend: str


def upload(
    storage: CheckpointStorage,
    checkpoint: NativeCheckpoint,
    *,
    target: NativeUpload,
    base: UploadBase,
    sections: KeyedStateHandle | None,
) -> tuple[IncrementalKeyedStateHandle, int]:
    """Upload what ``base`` lacks; returns the handle and the bytes written."""
    written = 0
    shared: list[StateFile] = []
    try:
        for name, size in checkpoint.shared:
            known = base.files.get(name)
            if known is not None and known.size == size:
                shared.append(known)
                continue
            path = layout.shared_file(target.uid, target.subtask, name)
            storage.put_file(path, os.path.join(checkpoint.directory, name))
            shared.append(StateFile(path, size, name))
            written += size
        bundle = _tar(checkpoint.directory, [name for name, _ in checkpoint.private])
        path = layout.native_private_file(target.uid, target.subtask, target.checkpoint_id)
        storage.put(path, bundle)
        written += len(bundle)
    finally:
        checkpoint.discard()
    handle = IncrementalKeyedStateHandle(
        subtask=target.subtask,
        key_group_range=target.key_group_range,
        backend=target.backend,
        shared=tuple(shared),
        private=(StateFile(path, len(bundle), PRIVATE_BUNDLE),),
        base_checkpoint_id=base.checkpoint_id,
        sections=sections,
    )
    return handle, written


def _tar(directory: str, names: list[str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as bundle:
        for name in names:
            bundle.add(os.path.join(directory, name), arcname=name, recursive=False)
    return out.getvalue()


def _untar(data: bytes, directory: str, *, location: str) -> None:
    """Extract the plain files of a private bundle (anything else is refused)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as bundle:
        for member in bundle.getmembers():
            name = member.name
            if not member.isfile() or "/" in name or name in ("", ".", ".."):
                raise errors.CheckpointCorruptError(
                    f"{location} holds {name!r}, which is not a plain file of a native snapshot"
                )
            source = bundle.extractfile(member)
            assert source is not None
            with open(os.path.join(directory, name), "wb") as target:
                target.write(source.read())


def restore(
    op: Any, old: OperatorMetadata, storage: CheckpointStorage
) -> tuple[IncrementalKeyedStateHandle | None, int, int]:
    """Rebuild ``op``'s backend from the old native handles intersecting its key groups.

    Returns the handle adopted whole (to seed the upload tracker, or None), the bytes read and
    the files read."""
    kg_range: keygroups.KeyGroupRange = op.ctx.key_group_range
    handles = [
        h
        for h in old.incremental_handles
        if len(kg_range.intersection(keygroups.KeyGroupRange(*h.key_group_range)))
    ]
    if not handles:
        return None, 0, 0
    backend = native_backend(op)
    if backend is None or backend.native_format != handles[0].backend:
        raise errors.RestoreError(
            f"operator {old.uid!r}: the checkpoint holds native {handles[0].backend} state "
            "(an incremental checkpoint), which this job's state backend cannot read. Run the "
            f"job with --state-backend {handles[0].backend}, take a savepoint (savepoints are "
            "canonical), then start from that savepoint with the new backend"
        )
    downloads: list[tuple[str, keygroups.KeyGroupRange]] = []
    jobs: list[tuple[StateFile, str]] = []
    for index, handle in enumerate(handles):
        directory = backend.restore_directory(index)
        downloads.append((directory, keygroups.KeyGroupRange(*handle.key_group_range)))
        jobs.extend((f, os.path.join(directory, f.name)) for f in (*handle.shared, *handle.private))
    with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="native-restore") as pool:
        for _ in pool.map(lambda job: _download(storage, old.uid, *job), jobs):
            pass
    for handle, (directory, _) in zip(handles, downloads, strict=True):
        for private in handle.private:
            if private.name == PRIVATE_BUNDLE:
                bundle = os.path.join(directory, private.name)
                with open(bundle, "rb") as data:
                    _untar(data.read(), directory, location=storage.location_of(private.path))
                os.remove(bundle)
    base = backend.restore_native(downloads)
    return handles[base], sum(f.size for f, _ in jobs), len(jobs)


def _download(storage: CheckpointStorage, uid: str, file: StateFile, destination: str) -> None:
    try:
        storage.get_file(file.path, destination)
    except Exception as exc:
        raise errors.CheckpointCorruptError(
            f"cannot read native state of operator {uid!r} from "
            f"{storage.location_of(file.path)}: {exc}"
        ) from exc
    actual = os.path.getsize(destination)
    if actual != file.size:
        raise errors.CheckpointCorruptError(
            f"{storage.location_of(file.path)} has {actual} bytes, the checkpoint metadata says "
            f"{file.size}: the file was changed"
        )
