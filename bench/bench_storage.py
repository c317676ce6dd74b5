"""Storage throughput against a real SeaweedFS: objects of 1 MB and 64 MB, and a directory.

Starts its own ``weed mini`` with :func:`streamjob.storage.seaweedfs.running_seaweedfs` (the
code the test fixtures use; no pytest here), then measures through
:class:`streamjob.storage.counting.CountingStorage` over :class:`streamjob.storage.s3.S3Storage`:

* 1 MB objects: ``put`` / ``get`` (one request each), repeated;
* 64 MB objects: ``put_file`` / ``get_file`` (boto3's transfer manager, parts in parallel);
* a directory of 200 files of 5 MB: uploaded and downloaded one file after another, then with
  a pool of concurrent workers.

Prints one line per figure, then ONE JSON line ``{"bench": "storage", ...}``.
Run: ``.venv/bin/python bench/bench_storage.py [--files 200 --file-mb 5 --workers 16]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import subprocess
import tempfile
import time
from collections.abc import Callable

from streamjob.storage import counting, options, s3, seaweedfs

MiB = 1024 * 1024
BUCKET = "bench"


def timed(action: Callable[[int], object], repeat: int) -> float:
    """Seconds to run ``action(0)`` ... ``action(repeat - 1)``."""
    start = time.perf_counter()
    for n in range(repeat):
        action(n)
    return time.perf_counter() - start


def rate(nbytes: int, seconds: float) -> float:
    return round(nbytes / MiB / seconds, 1) if seconds > 0 else 0.0


def _each(
    pool: concurrent.futures.ThreadPoolExecutor,
    action: Callable[[tuple[str, pathlib.Path]], None],
    pairs: list[tuple[str, pathlib.Path]],
) -> float:
    """Seconds to run ``action`` on every (key, path) pair with ``pool``."""
    start = time.perf_counter()
    list(pool.map(action, pairs))
    return time.perf_counter() - start


def warm_up(storage: counting.CountingStorage) -> None:
    """The first writes to a new bucket make SeaweedFS grow volumes: keep them out of figures."""
    for n in range(5):
        storage.put(f"warm-up/{n}", os.urandom(MiB))
    storage.delete_prefix("warm-up/")
    storage.reset()


def objects_1mb(storage: counting.CountingStorage, repeat: int) -> dict[str, float]:
    data = os.urandom(MiB)
    up = timed(lambda n: storage.put(f"small/{n}", data), repeat)
    down = timed(lambda n: storage.get(f"small/{n}"), repeat)
    return {"put_1mb_mib_s": rate(repeat * MiB, up), "get_1mb_mib_s": rate(repeat * MiB, down)}


def objects_64mb(
    storage: counting.CountingStorage, workdir: pathlib.Path, repeat: int
) -> dict[str, float]:
    source = workdir / "big.bin"
    source.write_bytes(os.urandom(64 * MiB))
    up = timed(lambda n: storage.put_file(f"big/{n}", source), repeat)
    down = timed(lambda n: storage.get_file(f"big/{n}", workdir / f"back-{n}"), repeat)
    assert (workdir / "back-0").read_bytes() == source.read_bytes()
    size = repeat * 64 * MiB
    return {"put_64mb_mib_s": rate(size, up), "get_64mb_mib_s": rate(size, down)}


def directory(
    storage: counting.CountingStorage, workdir: pathlib.Path, files: int, file_mb: int, workers: int
) -> dict[str, float]:
    src = workdir / "dir"
    src.mkdir()
    block = os.urandom(file_mb * MiB)
    paths = []
    for n in range(files):
        path = src / f"{n:05d}.sst"
        path.write_bytes(n.to_bytes(8, "big") + block[8:])
        paths.append(path)
    total = files * file_mb * MiB
    results: dict[str, float] = {}
    for mode, pool_size in (("sequential", 1), ("concurrent", workers)):
        back = workdir / f"back-{mode}"
        back.mkdir()
        uploads = [(f"dir-{mode}/{p.name}", p) for p in paths]
        downloads = [(f"dir-{mode}/{p.name}", back / p.name) for p in paths]
        with concurrent.futures.ThreadPoolExecutor(pool_size) as pool:
            up = _each(pool, lambda pair: storage.put_file(*pair), uploads)
            down = _each(pool, lambda pair: storage.get_file(*pair), downloads)
        results[f"dir_upload_{mode}_mib_s"] = rate(total, up)
        results[f"dir_download_{mode}_mib_s"] = rate(total, down)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-mb", type=int, default=5)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--repeat-1mb", type=int, default=50)
    parser.add_argument("--repeat-64mb", type=int, default=3)
    args = parser.parse_args()
    weed = seaweedfs.find_weed()
    version = subprocess.run([weed, "version"], capture_output=True, text=True, check=False)
    figures: dict[str, object] = {"bench": "storage", "backend": "seaweedfs"}
    figures["weed_version"] = version.stdout.strip().removeprefix("version ")
    with (
        seaweedfs.running_seaweedfs(buckets=[BUCKET]) as server,
        tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp,
    ):
        opts = options.S3Options(
            endpoint_url=server.endpoint_url,
            region=server.region,
            path_style=True,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
        )
        print(f"SeaweedFS {figures['weed_version']} at {server.endpoint_url}")
        print(f"multipart: {opts.multipart_chunksize // MiB} MiB parts, {opts.max_concurrency} "
              f"in parallel per file; directory workers: {args.workers}")  # fmt: skip
        workdir = pathlib.Path(tmp)
        with counting.CountingStorage(s3.S3Storage(BUCKET, "bench", opts)) as storage:
            steps: list[tuple[str, Callable[[], dict[str, float]]]] = [
                ("1 MB objects", lambda: objects_1mb(storage, args.repeat_1mb)),
                ("64 MB objects", lambda: objects_64mb(storage, workdir, args.repeat_64mb)),
                (
                    f"directory of {args.files} x {args.file_mb} MB",
                    lambda: directory(storage, workdir, args.files, args.file_mb, args.workers),
                ),
            ]
            warm_up(storage)
            for title, step in steps:
                result = step()
                for name, value in result.items():
                    print(f"{title:>28}: {name:<32} {value:>8.1f} MiB/s")
                figures.update(result)
            counters = storage.snapshot()
        print(f"moved {counters.bytes_written / MiB:.0f} MiB up, {counters.bytes_read / MiB:.0f} "
              f"MiB down in {counters.total_requests} storage calls")  # fmt: skip
    figures |= {"files": args.files, "file_mb": args.file_mb, "workers": args.workers}
    figures["cpus"] = os.cpu_count()
    figures["part_mib"] = opts.multipart_chunksize // MiB
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
