"""Put-if-absent races: of concurrent writers of one key exactly one wins, on every backend.

Aspects covered:

* two threads, each with its own storage object (its own connection pool), race on 25 keys;
* eight threads sharing one storage object race on 4 keys;
* two separate processes race on 25 keys (the local implementation's ``os.link`` and the
  servers' conditional PUT are atomic across processes, not just threads);
* every round, the stored content is the winner's.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import threading
from collections.abc import Callable

from streamjob.storage import base, local, options, s3

StorageMaker = Callable[..., base.CheckpointStorage]
ROUNDS = 25


def _assert_one_winner(storage: base.CheckpointStorage, key: str, results: list[bool]) -> None:
    winners = [writer for writer, won in enumerate(results) if won]
    assert len(winners) == 1, f"{key}: writers {winners} all won"
    assert storage.get(key) == f"writer-{winners[0]}".encode()


def test_two_writers_with_their_own_clients(make_storage: StorageMaker) -> None:
    writers = [make_storage(), make_storage()]
    barrier = threading.Barrier(2)

    def write(writer: int, key: str) -> bool:
        barrier.wait()
        return writers[writer].put_if_absent(key, f"writer-{writer}".encode())

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for round_no in range(ROUNDS):
            key = f"chk-{round_no}/_metadata"
            results = list(pool.map(write, [0, 1], [key, key]))
            _assert_one_winner(writers[0], key, results)


def test_eight_threads_sharing_one_storage(storage: base.CheckpointStorage) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for round_no in range(4):
            key = f"race/{round_no}"
            barrier = threading.Barrier(8)

            def write(writer: int, key: str = key, barrier: threading.Barrier = barrier) -> bool:
                barrier.wait()
                return storage.put_if_absent(key, f"writer-{writer}".encode())

            _assert_one_winner(storage, key, list(pool.map(write, range(8))))


def _process_writer(
    target: tuple[str, str, str, options.S3Options | None],
    writer: int,
    barrier: threading.Barrier,
    results: multiprocessing.Queue[tuple[int, int, bool]],
) -> None:
    """Runs in a spawned process: race on ROUNDS keys, one barrier per round."""
    kind, where, prefix, opts = target
    storage: base.CheckpointStorage
    if kind == "local":
        storage = local.LocalStorage(where)
    else:
        assert opts is not None
        storage = s3.S3Storage(where, prefix, opts)
    for round_no in range(ROUNDS):
        barrier.wait(timeout=60)
        won = storage.put_if_absent(f"proc/{round_no}", f"writer-{writer}".encode())
        results.put((round_no, writer, won))
    storage.close()


def test_two_processes(
    storage: base.CheckpointStorage, s3_options: options.S3Options | None
) -> None:
    target: tuple[str, str, str, options.S3Options | None]
    if isinstance(storage, local.LocalStorage):
        target = ("local", str(storage.root), "", None)
    else:
        assert isinstance(storage, s3.S3Storage)
        target = ("s3", storage.bucket, storage.prefix, s3_options)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results: multiprocessing.Queue[tuple[int, int, bool]] = context.Queue()
    processes = [
        context.Process(target=_process_writer, args=(target, writer, barrier, results))
        for writer in (0, 1)
    ]
    for process in processes:
        process.start()
    outcomes: dict[int, list[bool]] = {n: [False, False] for n in range(ROUNDS)}
    for _ in range(2 * ROUNDS):
        round_no, writer, won = results.get(timeout=120)
        outcomes[round_no][writer] = won
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    for round_no, result in outcomes.items():
        _assert_one_winner(storage, f"proc/{round_no}", result)
