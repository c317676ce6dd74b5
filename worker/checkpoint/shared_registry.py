"""Which shared files (incremental SSTs under ``shared/``) may be deleted, and when.

DESIGN.md section 6 step 4: a shared file is deleted only when no retained or pending
checkpoint references it. Pending checkpoints only say what they reference when they are
acknowledged, so the registry reasons about what they *can* reference: a subtask bases an
incremental checkpoint only on a checkpoint it was notified about, and its base only moves
forward. Hence once checkpoint *n* has completed, no later checkpoint reuses files of a
checkpoint older than *n*'s floor (the oldest base among *n*'s native handles).

The protocol, run by the job runner:

1. :meth:`SharedStateRegistry.rebuild` at start, from the ``_metadata`` of every retained
   checkpoint (shared files no retained checkpoint references are garbage then:
   :meth:`unreferenced`);
2. :meth:`register` when checkpoint *n* commits, with its shared files and floor;
3. :meth:`release` when retention discards checkpoints: a released checkpoint stays known while
   it is at or above the floor, and the files that only forgotten checkpoints referenced are
   returned, to be deleted.

Pure bookkeeping: the runner does the storage I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from streamjob.checkpoint.metadata import CheckpointMetadata


class SharedStateRegistry:
    def __init__(self) -> None:
        self._files: dict[int, frozenset[str]] = {}
        self._retained: set[int] = set()
        self._floor = 0

    @classmethod
    def rebuild(cls, checkpoints: Iterable[CheckpointMetadata]) -> SharedStateRegistry:
        registry = cls()
        for meta in checkpoints:
            registry._files[meta.checkpoint_id] = frozenset(meta.shared_files())
            registry._retained.add(meta.checkpoint_id)
        return registry

    def register(self, checkpoint_id: int, files: Iterable[str], *, floor: int) -> None:
        self._files[checkpoint_id] = frozenset(files)
        self._retained.add(checkpoint_id)
        self._floor = max(self._floor, floor)

    def release(self, checkpoint_ids: Iterable[int]) -> list[str]:
        """Forget discarded checkpoints below the floor; the files nobody references now."""
        self._retained.difference_update(checkpoint_ids)
        forgotten = [c for c in self._files if c not in self._retained and c < self._floor]
        if not forgotten:
            return []
        candidates: set[str] = set()
        for checkpoint_id in forgotten:
            candidates.update(self._files.pop(checkpoint_id))
        return sorted(candidates - self.referenced())

    def referenced(self) -> set[str]:
        """Every shared file a known (retained, or maybe still reused) checkpoint references."""
        found: set[str] = set()
        for files in self._files.values():
            found.update(files)
        return found

    def unreferenced(self, existing: Iterable[str]) -> list[str]:
        """Which of the ``existing`` shared files no known checkpoint references."""
        referenced = self.referenced()
        return sorted(path for path in existing if path not in referenced)
