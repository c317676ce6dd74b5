"""Copy-on-write snapshots of keyed state: key group by key group, after the barrier went on.

A hashmap backend's values are mutable Python objects, and a thread would hold the GIL anyway,
so its key groups are serialized on the task's loop. Serializing them all at the barrier would
hold the barrier (and the task) for about 9 s per GB; instead (DESIGN.md section 6, step 2):

1. at the barrier, per keyed operator whose backend can (``op.guard_key_groups``; the hashmap
   backend, not RocksDB, which takes a native checkpoint): every key group of the operator is
   *pending* and guarded: O(key groups), no state is read;
2. the task forwards the barrier at once and goes on with records;
3. records go on. A pending key group's state keeps, entry by entry, the barrier's value of
   each entry a record writes or deletes, and a frozen copy of each immutable value (or
   list or map of immutable items) a record reads (:mod:`streamjob.state.hashmap_guard`:
   Flink's copy-on-write state map, per entry). Whatever that cannot keep makes the guard
   capture the whole key group first (:meth:`KeyGroupSnapshot.touch`): a mutable value read
   (it may be changed in place), a timer registered, deleted or fired in it, a window fired
   (every key group: ``touch_all``). A key group's states, timers and window contents are
   captured together, as they were at the barrier: states whose values are all atomic as
   copies of their dicts (:mod:`streamjob.state.hashmap_capture`), everything else
   serialized there and then;
4. between batches the task runs :meth:`CopyOnWriteSnapshot.step`: captured key groups are
   serialized first (their copies freed), then the pending ones in order, for at most
   :data:`STEP_BUDGET_S` per step (at least one key group);
5. when no key group is pending the guards are gone and ``on_done`` runs on the task's loop:
   the checkpointer uploads in a thread, then acknowledges.

A failed serialization (say, a value that cannot be pickled) drops the guards and ends the
snapshot with ``failure`` set: the checkpoint is declined, the task goes on. A snapshot that
must end at once (a newer barrier: the coordinator triggers one only after this checkpoint was
aborted; or the task ends) is finished by :meth:`CopyOnWriteSnapshot.complete_now` or dropped
by :meth:`CopyOnWriteSnapshot.abandon`. Blobs are kept as parts
(:func:`~streamjob.checkpoint.operator_state.keyed_blob_parts`), joined once by the upload.
Savepoints take the same path (stop-with-savepoint too: the task serializes while it idles).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from streamjob.checkpoint.operator_state import capture_keyed_blob, keyed_blob_parts
from streamjob.state import canonical_columns

log = logging.getLogger(__name__)

STEP_BUDGET_S = 0.005
"""Serialization time per step between two batches (a key group is never split)."""


class KeyGroupSnapshot:
    """The key groups of one keyed operator in one checkpoint: pending, then captured (touched
    before a change), then serialized.

    It is the operator's :class:`~streamjob.runtime.timers.KeyGroupGuard`: ``pending``,
    ``touch(kg)`` and ``touch_all()``.
    """

    def __init__(self, op: Any, key_groups: Sequence[int]) -> None:
        self.op = op
        self.pending: set[int] = set(key_groups)
        self.captured: dict[int, Callable[[], list[canonical_columns.Part]]] = {}
        self.blobs: dict[int, list[canonical_columns.Part]] = {}
        self.failure: Exception | None = None
        self._order = list(key_groups)
        self._cursor = 0
        self._guarded = False
        #: key groups captured because something was about to change them (the rest: steps)
        self.taken_by_touch = 0
        #: entries whose barrier value the backend kept while records changed them
        self.copied_on_write = 0

    def start(self) -> bool:
        """Guard the pending key groups; False if the operator's backend cannot."""
        self._guarded = bool(self.op.guard_key_groups(self))
        return self._guarded

    @property
    def done(self) -> bool:
        return not self.pending and not self.captured

    def touch(self, key_group: int) -> None:
        """Capture ``key_group`` now if it is pending (something is about to change it)."""
        if key_group in self.pending:
            self.taken_by_touch += 1
            self._take(key_group, capture=True)

    def touch_all(self) -> None:
        for kg in self._order:
            if kg in self.pending:
                self.taken_by_touch += 1
                self._take(kg, capture=True)

    def step(self, deadline: float) -> None:
        """Serialize captured, then pending key groups until ``deadline`` (at least one)."""
        captured = self.captured
        while captured and self.failure is None:
            kg = next(iter(captured))
            self._build(kg, captured.pop(kg))
            if time.perf_counter() >= deadline:
                return
        order, pending = self._order, self.pending
        while pending and self._cursor < len(order):
            kg = order[self._cursor]
            self._cursor += 1
            if kg in pending:
                self._take(kg, capture=False)
                if time.perf_counter() >= deadline:
                    return

    def finish_now(self) -> None:
        """Capture what is pending and serialize every capture."""
        self.touch_all()
        while self.captured and self.failure is None:
            kg = next(iter(self.captured))
            self._build(kg, self.captured.pop(kg))

    def _take(self, key_group: int, *, capture: bool) -> None:
        self.pending.discard(key_group)
        try:
            if capture:
                self.captured[key_group] = capture_keyed_blob(self.op, key_group)
            else:
                self.blobs[key_group] = keyed_blob_parts(self.op, key_group)
        except Exception as exc:
            self._fail(key_group, exc)
            return
        self.copied_on_write += self.op.release_key_group(key_group) or 0
        if not self.pending:
            self._unguard()

    def _build(self, key_group: int, build: Callable[[], list[canonical_columns.Part]]) -> None:
        try:
            self.blobs[key_group] = build()
        except Exception as exc:
            self._fail(key_group, exc)

    def _fail(self, key_group: int, exc: Exception) -> None:
        log.warning(
            "operator %r: serializing key group %d for a checkpoint failed: %s",
            getattr(self.op, "name", "?"),
            key_group,
            exc,
        )
        self.failure = exc
        self.abandon()

    def abandon(self) -> None:
        """Drop the guards and whatever is pending (the snapshot is not needed any more)."""
        self.pending.clear()
        self.captured.clear()
        self._unguard()

    def _unguard(self) -> None:
        if self._guarded:
            self._guarded = False
            self.op.unguard_key_groups()


class CopyOnWriteSnapshot:
    """The copy-on-write part of one checkpoint in one task: its operators' key groups.

    The task runs it between batches (``step``; it is the task's ``snapshot_work``);
    ``on_done`` runs once, on the task's loop, when every key group is serialized or the
    snapshot failed (see ``failure``); never after :meth:`abandon`.
    """

    def __init__(
        self,
        checkpoint_id: int,
        operators: Sequence[KeyGroupSnapshot],
        on_done: Callable[[CopyOnWriteSnapshot], None],
    ) -> None:
        self.checkpoint_id = checkpoint_id
        self.operators = list(operators)
        self._on_done: Callable[[CopyOnWriteSnapshot], None] | None = on_done

    @property
    def failure(self) -> Exception | None:
        return next((op.failure for op in self.operators if op.failure is not None), None)

    def step(self) -> bool:
        """Serialize for at most :data:`STEP_BUDGET_S`; False once the snapshot is over."""
        if self._on_done is None:
            return False
        deadline = time.perf_counter() + STEP_BUDGET_S
        for op in self.operators:
            if self.failure is not None:
                break
            if not op.done:
                op.step(deadline)
                if time.perf_counter() >= deadline:
                    break
        if self.failure is None and not all(op.done for op in self.operators):
            return True
        self._finish()
        return False

    def complete_now(self) -> None:
        """Serialize every pending key group now, then finish."""
        for op in self.operators:
            if self.failure is None:
                op.finish_now()
        self._finish()

    def abandon(self) -> None:
        self._on_done = None
        for op in self.operators:
            op.abandon()

    def _finish(self) -> None:
        on_done, self._on_done = self._on_done, None
        if self.failure is not None:
            for op in self.operators:
                op.abandon()
        if on_done is not None:
            on_done(self)
