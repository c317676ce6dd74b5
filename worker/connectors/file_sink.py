"""Exactly-once row-format file sink: lines into part files, in a directory or an S3 prefix.

``FileSink(url)`` writes under any URL :func:`streamjob.storage.open_storage` accepts
(``s3://bucket/prefix``, ``file:///path``, a plain path), each record encoded as one line.
Part files are named ``{part_prefix}-{attempt_id}-{subtask}-{counter}``, so no two writers,
attempts or runs ever write the same key. A part file goes through Flink's three stages:

* **in-progress**: a multipart upload (:meth:`CheckpointStorage.open_multipart`); records are
  buffered and a part is uploaded whenever the buffer reaches ``part_size_bytes`` (>= 5 MiB, S3's
  minimum). A part file rolls into a new one at ``roll_size_bytes``.
* **pending**: at the checkpoint barrier the rest of the buffer goes up as the last part and the
  upload is sealed; its key, upload id and parts (with ETags) are the transaction's descriptor,
  stored in the checkpoint. Nothing is visible yet.
* **finished**: when the checkpoint completes, the upload is completed and the file appears at
  once. After a restore the descriptor is enough to complete it from a new process, and doing
  it twice is harmless (:meth:`CheckpointStorage.complete_multipart`).

The protocol is :class:`streamjob.connectors.two_phase.TwoPhaseCommitSinkWriter`'s; this module
supplies its steps. On restore, writer 0 lists the uploads under ``{part_prefix}-`` and aborts
those of earlier attempts that no restored transaction holds (in-progress files of the crashed
attempt, pending ones of a checkpoint that never completed). So two sinks writing into one
directory need prefixes that are not prefixes of each other. Without checkpointing a rolled
part file is finished at once, and ``finish`` finishes the last. An empty transaction creates
no file.

The storage is opened once per process and sink and shared by its writers and attempts (like
Flink's file system cache); pickling the sink leaves it behind.

``exactly_once=False`` writes finished files directly with ``put`` (at each roll, checkpoint and
end of input): at-least-once, replays show up as duplicates; the tests' negative control.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from streamjob.connectors import two_phase
from streamjob.connectors.sink import Sink, SinkContext, SinkWriter
from streamjob.storage import base, factory, keys, options

log = logging.getLogger(__name__)

DEFAULT_ROLL_SIZE = 128 * 1024 * 1024


class FileSink(Sink):
    """Lines into part files under ``directory`` (a URL or a path), exactly once.

    ``encoder`` turns a record into its line (no newline); ``roll_size_bytes`` starts a new part
    file; ``part_size_bytes`` is the upload part size; ``part_prefix`` starts every file name;
    ``exactly_once=False`` is the at-least-once variant; ``storage_options`` configure S3 (else
    the environment does).
    """

    name = "file"

    def __init__(
        self,
        directory: str,
        *,
        encoder: Callable[[Any], str] = str,
        roll_size_bytes: int = DEFAULT_ROLL_SIZE,
        part_prefix: str = "part",
        part_size_bytes: int = base.MIN_PART_SIZE,
        exactly_once: bool = True,
        storage_options: options.S3Options | None = None,
    ) -> None:
        if roll_size_bytes <= 0:
            raise ValueError(f"roll_size_bytes must be positive, got {roll_size_bytes}")
        if part_size_bytes < base.MIN_PART_SIZE:
            raise ValueError(
                f"part_size_bytes must be at least {base.MIN_PART_SIZE} (S3's minimum part "
                f"size), got {part_size_bytes}"
            )
        keys.validate_key(part_prefix)
        self.directory = directory
        self.encoder = encoder
        self.roll_size_bytes = roll_size_bytes
        self.part_prefix = part_prefix
        self.part_size_bytes = part_size_bytes
        self.exactly_once = exactly_once
        self.storage_options = storage_options
        self._storage: base.CheckpointStorage | None = None
        self._lock = threading.Lock()

    def storage(self) -> base.CheckpointStorage:
        """The storage at ``directory``, opened once per process and shared by this sink's
        writers and attempts (an S3 client takes a fifth of a second to make)."""
        with self._lock:
            if self._storage is None:
                self._storage = factory.open_storage(self.directory, self.storage_options)
            return self._storage

    def create_writer(self, context: SinkContext) -> SinkWriter:
        if not self.exactly_once:
            return _DirectWriter(self, self.storage(), context)
        writer = FileSinkWriter(self, self.storage(), context)
        writer.initialize()
        return writer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_storage"] = None  # a process opens its own
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def part_key(self, context: SinkContext, counter: int) -> str:
        return f"{self.part_prefix}-{context.attempt_id}-{context.subtask_index}-{counter}"

    def encode(self, records: list[Any]) -> bytes:
        encoder = self.encoder
        return "".join(f"{encoder(record)}\n" for record in records).encode("utf-8")


@dataclasses.dataclass
class _PartFile:
    """An in-progress part file: an open upload plus what is not uploaded yet."""

    upload: base.MultipartUpload
    buffer: bytearray = dataclasses.field(default_factory=bytearray)

    @property
    def size(self) -> int:
        return self.upload.bytes_uploaded + len(self.buffer)


@dataclasses.dataclass
class FileTransaction:
    """The part files written since the last checkpoint: sealed ones and the current one."""

    transaction_id: str
    sealed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    current: _PartFile | None = None


class FileSinkWriter(two_phase.TwoPhaseCommitSinkWriter[FileTransaction]):
    """One subtask's writer; a transaction's descriptor is ``{"files": [upload, ...]}``."""

    def __init__(
        self, sink: FileSink, storage: base.CheckpointStorage, context: SinkContext
    ) -> None:
        super().__init__(context)
        self._sink = sink
        self._storage = storage
        self._counter = 0

    def begin_transaction(self, transaction_id: str) -> FileTransaction:
        return FileTransaction(transaction_id)

    def write(
        self, transaction: FileTransaction, records: list[Any], timestamps: list[int] | None
    ) -> None:
        if not records:
            return
        part = transaction.current or self._open_part(transaction)
        part.buffer += self._sink.encode(records)
        if len(part.buffer) >= self._sink.part_size_bytes:
            part.upload.upload_part(bytes(part.buffer))
            part.buffer.clear()
        if part.size >= self._sink.roll_size_bytes:
            sealed = self._seal(transaction)
            if not self.context.checkpointing:  # nothing could roll it back: finish it now
                self.commit({"files": [sealed]})
            else:
                transaction.sealed.append(sealed)

    def pre_commit(self, transaction: FileTransaction) -> dict[str, Any] | None:
        if transaction.current is not None:
            transaction.sealed.append(self._seal(transaction))
        if not transaction.sealed:
            return None
        return {"files": list(transaction.sealed)}

    def commit(self, descriptor: dict[str, Any]) -> None:
        for file in descriptor["files"]:
            parts = [base.UploadedPart.from_dict(p) for p in file["parts"]]
            done_now = self._storage.complete_multipart(file["key"], file["upload_id"], parts)
            if not done_now:
                log.info("part file %s was already finished", file["key"])

    def abort(self, transaction: FileTransaction) -> None:
        if transaction.current is not None:
            transaction.current.upload.abort()
            transaction.current = None
        for file in transaction.sealed:
            self._storage.abort_multipart(file["key"], file["upload_id"])
        transaction.sealed.clear()

    def recover_and_cleanup(self, restored: list[two_phase.PendingTransaction]) -> None:
        """Abort the uploads under this sink's prefix that earlier attempts left unfinished."""
        kept = {
            (file["key"], file["upload_id"])
            for pending in restored
            for file in pending.descriptor["files"]
        }
        own = f"{self._sink.part_prefix}-{self.context.attempt_id}-"
        for upload in self._storage.list_multipart_uploads(f"{self._sink.part_prefix}-"):
            if (upload.key, upload.upload_id) in kept or upload.key.startswith(own):
                continue
            log.info("aborting leftover in-progress part file %s", upload.key)
            self._storage.abort_multipart(upload.key, upload.upload_id)

    def _open_part(self, transaction: FileTransaction) -> _PartFile:
        key = self._sink.part_key(self.context, self._counter)
        self._counter += 1
        transaction.current = _PartFile(self._storage.open_multipart(key))
        return transaction.current

    def _seal(self, transaction: FileTransaction) -> dict[str, Any]:
        """Upload the rest as the last part; the upload is then pending (its descriptor)."""
        part = transaction.current
        assert part is not None
        transaction.current = None
        if part.buffer or part.upload.part_count == 0:
            part.upload.upload_part(bytes(part.buffer))
            part.buffer.clear()
        upload = part.upload
        return {
            "key": upload.key,
            "upload_id": upload.upload_id,
            "parts": [p.to_dict() for p in upload.parts],
        }


class _DirectWriter(SinkWriter):
    """At-least-once: finished files written with ``put`` at each roll, barrier and the end."""

    def __init__(
        self, sink: FileSink, storage: base.CheckpointStorage, context: SinkContext
    ) -> None:
        self._sink = sink
        self._storage = storage
        self._context = context
        self._counter = 0
        self._buffer = bytearray()

    def write_batch(self, records: list[Any], timestamps: list[int] | None) -> None:
        self._buffer += self._sink.encode(records)
        if len(self._buffer) >= self._sink.roll_size_bytes:
            self._flush()

    def snapshot_state(self, checkpoint_id: int) -> list[Any] | None:
        self._flush()
        return None

    def finish(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        key = self._sink.part_key(self._context, self._counter)
        self._counter += 1
        self._storage.put(key, bytes(self._buffer))
        self._buffer.clear()
