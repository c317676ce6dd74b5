"""The completed-checkpoint store: finding, committing, retaining and reading checkpoints.

A checkpoint is complete exactly when ``chk-{n}/_metadata`` exists; it is written last, with
put-if-absent, so two JobManagers cannot both commit checkpoint *n*. Retention deletes
``_metadata`` first, then the checkpoint's own files. At start, checkpoint directories without
``_metadata`` are garbage. Files under ``shared/`` (incremental SSTs) outlive the checkpoint
that uploaded them: the runner deletes them (:meth:`CheckpointStore.delete_shared`) when its
:class:`~streamjob.checkpoint.shared_registry.SharedStateRegistry` says nobody references them.
Files of a savepoint or another job are never touched here: this store only ever lists and
deletes under its own job's root.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from streamjob import errors
from streamjob.checkpoint import layout
from streamjob.checkpoint.metadata import CheckpointMetadata
from streamjob.storage.base import CheckpointStorage
from streamjob.storage.errors import ObjectNotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listing:
    completed: list[int]  # ascending
    incomplete: list[int]

    @property
    def max_id(self) -> int:
        return max([0, *self.completed, *self.incomplete])


class CheckpointStore:
    def __init__(self, job_storage: CheckpointStorage, job_id: str) -> None:
        self.storage = job_storage
        self.job_id = job_id

    def describe(self, checkpoint_id: int) -> str:
        return self.storage.location_of(layout.checkpoint_dir(checkpoint_id))

    def listing(self) -> Listing:
        seen: dict[int, bool] = {}
        for info in self.storage.list("chk-"):
            head, _, rest = info.key.partition("/")
            cid = layout.parse_checkpoint_dir(head)
            if cid is None:
                continue
            seen[cid] = seen.get(cid, False) or rest == layout.METADATA
        return Listing(
            completed=sorted(c for c, done in seen.items() if done),
            incomplete=sorted(c for c, done in seen.items() if not done),
        )

    def read(self, checkpoint_id: int, *, verify: bool = True) -> CheckpointMetadata:
        """The checkpoint's metadata; with ``verify``, every file it references is checked."""
        key = layout.metadata_key(checkpoint_id)
        location = self.storage.location_of(key)
        try:
            data = self.storage.get(key)
        except ObjectNotFound as exc:
            raise errors.CheckpointCorruptError(f"{location} is missing") from exc
        meta = CheckpointMetadata.from_bytes(data, location=location)
        if verify:
            self.verify_files(meta, self.storage)
        return meta

    @staticmethod
    def verify_files(meta: CheckpointMetadata, storage: CheckpointStorage) -> None:
        """Every referenced file exists with the recorded size, or a loud error."""
        for path, size in meta.files():
            try:
                actual = storage.size(path)
            except ObjectNotFound as exc:
                raise errors.CheckpointCorruptError(
                    f"checkpoint {meta.checkpoint_id} references {storage.location_of(path)}, "
                    "which does not exist (deleted by hand or by another tool?)"
                ) from exc
            if actual != size:
                raise errors.CheckpointCorruptError(
                    f"checkpoint {meta.checkpoint_id}: {storage.location_of(path)} has "
                    f"{actual} bytes, the metadata says {size}: the file was changed"
                )

    def latest(self, *, allow_fallback: bool = False) -> CheckpointMetadata | None:
        """The newest completed checkpoint; an unreadable newest one fails loudly.

        Falling back to an older checkpoint would replay output that sinks may already have
        committed for the newer one, so it needs ``allow_fallback``.
        """
        completed = self.listing().completed
        for position in range(len(completed) - 1, -1, -1):
            cid = completed[position]
            try:
                return self.read(cid)
            except errors.CheckpointCorruptError as exc:
                older = completed[position - 1] if position > 0 else None
                if not allow_fallback:
                    older_text = (
                        f"the previous one is {self.describe(older)}"
                        if older is not None
                        else "there is no older checkpoint"
                    )
                    raise errors.CheckpointCorruptError(
                        f"the latest checkpoint {self.describe(cid)} cannot be restored: {exc}. "
                        f"Refusing to fall back silently ({older_text}): sinks may already "
                        "have committed output of the latest one, so an older one would "
                        "duplicate it. Repair the checkpoint, or start with "
                        "--allow-checkpoint-fallback to accept possible duplicates."
                    ) from exc
                log.warning("skipping unreadable checkpoint %d (fallback allowed): %s", cid, exc)
        return None

    def commit(self, meta: CheckpointMetadata) -> bool:
        """Write ``_metadata`` with put-if-absent: True if this call committed it."""
        return self.storage.put_if_absent(layout.metadata_key(meta.checkpoint_id), meta.to_bytes())

    def discard(self, checkpoint_id: int) -> None:
        """Delete a checkpoint: its ``_metadata`` first, then its files."""
        prefix = layout.checkpoint_dir(checkpoint_id) + "/"
        with contextlib.suppress(ObjectNotFound):
            self.storage.delete(layout.metadata_key(checkpoint_id))
        self.storage.delete_prefix(prefix)

    def retain(self, keep: int) -> list[int]:
        completed = self.listing().completed
        doomed = completed[:-keep] if keep > 0 else completed
        for cid in doomed:
            self.discard(cid)
        return doomed

    def shared_files(self) -> list[str]:
        """Every file under ``shared/``."""
        return [info.key for info in self.storage.list(layout.SHARED + "/")]

    def delete_shared(self, paths: list[str]) -> None:
        """Delete shared files no checkpoint references any more."""
        if paths:
            self.storage.delete_many(paths)

    def remove_garbage(self, *, below: int | None = None) -> list[int]:
        """Delete checkpoint directories that never completed (at start: all of them)."""
        removed = []
        for cid in self.listing().incomplete:
            if below is None or cid < below:
                self.storage.delete_prefix(layout.checkpoint_dir(cid) + "/")
                removed.append(cid)
        return removed
