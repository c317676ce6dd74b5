"""The start-up probe: can this storage be used, and is put-if-absent really honoured?

Called through :meth:`CheckpointStorage.probe` (see :mod:`streamjob.storage.base`). Steps:

1. ``check_access()``: the implementation checks the endpoint is reachable, the bucket (or
   directory) exists and the credentials are valid; it raises an error naming the fix.
2. Sequential put-if-absent: a first conditional write of a fresh key must return True, a
   second one False, and the key must still hold the first content (some S3-compatible servers
   answer 200 and silently overwrite).
3. Racing put-if-absent: :data:`RACERS` threads write the same fresh key at once; exactly one
   may win and the key must hold the winner's content (a server may check before it writes).
4. The probe keys (under :data:`PROBE_PREFIX`) are deleted again.

The result is a :class:`StorageCapabilities`; exactly-once callers call its
``require_put_if_absent()``.
"""

from __future__ import annotations

import concurrent.futures
import threading
import uuid
from typing import TYPE_CHECKING

from streamjob.storage import info

if TYPE_CHECKING:
    from streamjob.storage import base

PROBE_PREFIX = "_streamjob_probe/"
RACERS = 4
RACE_ROUNDS = 2


def probe_storage(storage: base.CheckpointStorage) -> info.StorageCapabilities:
    """Run the probe described in the module docstring."""
    notes = list(storage.check_access())
    run = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        sequential, note = _check_sequential(storage, f"{run}/sequential")
        notes.append(note)
        concurrent = False
        if sequential:
            concurrent, note = _check_race(storage, run)
            notes.append(note)
    finally:
        storage.delete_prefix(f"{run}/")
    return info.StorageCapabilities(
        location=storage.describe(),
        put_if_absent_safe=sequential and concurrent,
        put_if_absent_sequential=sequential,
        put_if_absent_concurrent=concurrent,
        notes=tuple(notes),
    )


def _check_sequential(storage: base.CheckpointStorage, key: str) -> tuple[bool, str]:
    first = storage.put_if_absent(key, b"first")
    if not first:
        return False, "put-if-absent of a fresh key reported that the key already existed"
    second = storage.put_if_absent(key, b"second")
    content = storage.get(key)
    if second or content != b"first":
        verb = "overwrote" if content != b"first" else "reported writing"
        return False, (
            f"put-if-absent of an existing key {verb} it (the server ignores "
            "'If-None-Match: *' on PutObject)"
        )
    return True, "put-if-absent refuses to overwrite an existing key"


def _check_race(storage: base.CheckpointStorage, run: str) -> tuple[bool, str]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=RACERS) as pool:
        for round_no in range(RACE_ROUNDS):
            key = f"{run}/race-{round_no}"
            barrier = threading.Barrier(RACERS)

            def race(racer: int, key: str = key, barrier: threading.Barrier = barrier) -> bool:
                barrier.wait()
                return storage.put_if_absent(key, f"racer-{racer}".encode())

            results = list(pool.map(race, range(RACERS)))
            winners = [i for i, won in enumerate(results) if won]
            content = storage.get(key)
            if len(winners) != 1 or content != f"racer-{winners[0]}".encode():
                return False, (
                    f"{len(winners)} of {RACERS} concurrent put-if-absent writers of one key "
                    "were told they won (the server checks for the key before it writes, "
                    "not atomically)"
                )
    return True, f"of {RACERS} concurrent put-if-absent writers exactly one won"
