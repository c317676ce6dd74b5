"""The fast path: tumbling and sliding time windows with their default trigger, window-major.

Windows are kept as ``{window_end: {key: accumulator}}`` (all windows of one assigner have the
same size, so the end names the window), and a heap of window ends is the only timer: when the
watermark (or processing time) passes ``end - 1`` the whole window fires at once: for
``reduce`` without a window function that is a single ``list.extend`` of the dict's values.
Per record: the window end (integer arithmetic), one dict lookup when the end changes, one
``get`` and one store for the key. No object, no ``hash()`` of a window, no per-key timer.

Semantics are Flink's ``WindowOperator`` with ``EventTimeTrigger``/``ProcessingTimeTrigger``:

1. a window is *late* once ``end - 1 + allowed_lateness <= watermark``: its records are
   skipped; a record skipped by all its windows goes to the late-data side output (or is
   dropped and counted);
2. a window fires when the watermark reaches ``end - 1``; with allowed lateness it is kept
   (``_fired``) until ``end - 1 + lateness``, and each late-but-allowed record re-fires its key's
   result at once; then the window is cleaned (``ProcessWindowFunction.clear`` per key);
3. processing-time windows fire when the clock reaches ``end - 1`` and are cleaned at once.

Records that hit an already fired window, or a late one, take a slow path after the batch's
fast loop (they touch windows the fast loop never touches, so per-window order is kept).
``snapshot_key_group(kg)`` writes one key group's accumulators; restore works at any parallelism.

Copy-on-write snapshots (``guard_key_groups``): a batch first lets the snapshot serialize the key
groups of its records that it has not serialized yet; firing or cleaning windows spans all key
groups, so it lets the snapshot finish first (``touch_all``). The per-key-group index of the
windows is built once per snapshot (one pass over the open windows) and kept while it runs.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable
from typing import Any

from streamjob import errors, keycodec
from streamjob.runtime.events import Batch
from streamjob.runtime.failures import user_error
from streamjob.runtime.operators.base import OperatorContext, Output
from streamjob.runtime.timers import SECTION_BACKEND, KeyGroupGuard, ProcessingTimeScheduler
from streamjob.state.serializers import DEFAULT_SERIALIZER
from streamjob.windows.assigners import _AlignedWindows
from streamjob.windows.operator_base import (
    SECTION_WINDOWS,
    WindowOperatorBase,
    WindowSpec,
    missing_timestamps,
)

_MISSING: Any = object()
_MAGIC = b"SJWN"
_VERSION = 1
_HEADER = struct.Struct(">4sHII")  # magic, version, key group, number of windows
_WINDOW = struct.Struct(">qBI")  # end, fired, number of entries
_U32 = struct.Struct(">I")

Slow = tuple[Any, Any, int, int]  # (record, key, timestamp, largest window end left to do)


class FastWindowOperator(WindowOperatorBase):
    def __init__(self, spec: WindowSpec) -> None:
        super().__init__(spec)
        assigner = spec.assigner
        assert isinstance(assigner, _AlignedWindows)
        self.size = assigner.size
        self.slide = assigner.slide
        self.offset = assigner.offset
        self.tumbling = assigner.slide == assigner.size
        self._live: dict[int, dict[Any, Any]] = {}
        self._pending: list[int] = []  # ends of live windows (and of re-armed fired ones)
        self._fired: dict[int, dict[Any, Any]] = {}
        self._cleanup: list[int] = []  # ends of fired windows kept for allowed lateness
        self._rearmed: dict[int, dict[Any, None]] = {}
        self._generation = 0
        self._index: tuple[int, dict[int, list[Any]]] | None = None
        self._guard: KeyGroupGuard | None = None
        self.peak_open_windows = 0
        contents = spec.contents
        self._reduce: Callable[[Any, Any], Any] | None = contents.reduce
        self._init, self._fold, self._result = _accumulation(spec)

    def setup(self, ctx: OperatorContext, output: Output) -> None:
        super().setup(ctx, output)
        self.scheduler = ProcessingTimeScheduler(ctx.clock, ctx.mailbox, self._on_processing_time)

    def open(self) -> None:
        super().open()
        if not self.event_time and self._pending:
            self.scheduler.request(self._pending[0] - 1)

    def close(self) -> None:
        self.scheduler.close()
        super().close()

    # -- records ----------------------------------------------------------------------------
    def process_batch(self, batch: Batch, input_index: int) -> None:
        records = batch.records
        keys = batch.keys
        if keys is None:
            raise RuntimeError(f"operator '{self.name}' is keyed but got a batch without keys")
        if self._guard is not None:
            self._touch_batch(self._guard, batch)
        self._generation += 1
        if not self.event_time:
            self._add_processing_time(records, keys, self.ctx.clock.now_ms())
            return
        timestamps = batch.timestamps
        if timestamps is None:
            raise missing_timestamps(self.name)
        slow: list[Slow] = []
        if self.tumbling and self._reduce is not None:
            self._tumbling_reduce(records, keys, timestamps, slow)
        else:
            self._general(records, keys, timestamps, slow)
        if slow:
            self._slow_path(slow)

    def _tumbling_reduce(
        self, records: list[Any], keys: list[Any], timestamps: list[int], slow: list[Slow]
    ) -> None:
        size, offset = self.size, self.offset
        live, fired, pending = self._live, self._fired, self._pending
        fire_limit = self.watermark + 1  # end <= fire_limit: the window has already fired
        reduce = self._reduce
        assert reduce is not None
        missing = _MISSING
        cur_end = None
        w: dict[Any, Any] = {}
        record: Any = None
        ts: Any = None
        try:
            for record, key, ts in zip(records, keys, timestamps, strict=True):
                end = ts - (ts - offset) % size + size
                if end != cur_end:
                    w_or_none = live.get(end)
                    if w_or_none is None:
                        if end <= fire_limit or end in fired:
                            slow.append((record, key, ts, end))
                            cur_end = None
                            continue
                        w_or_none = live[end] = {}
                        heapq.heappush(pending, end)
                        self._note_open()
                    w = w_or_none
                    cur_end = end
                acc = w.get(key, missing)
                w[key] = record if acc is missing else reduce(acc, record)
        except Exception as exc:
            raise self._record_error(exc, record, ts) from exc

    def _general(
        self, records: list[Any], keys: list[Any], timestamps: list[int], slow: list[Slow]
    ) -> None:
        size, slide, offset = self.size, self.slide, self.offset
        live, fired, pending = self._live, self._fired, self._pending
        fire_limit = self.watermark + 1
        init, fold = self._init, self._fold
        missing = _MISSING
        record: Any = None
        ts: Any = None
        try:
            for record, key, ts in zip(records, keys, timestamps, strict=True):
                last_start = ts - (ts - offset) % slide
                for start in range(last_start, ts - size, -slide):
                    end = start + size
                    w = live.get(end)
                    if w is None:
                        if end <= fire_limit or end in fired:
                            slow.append((record, key, ts, end))
                            break  # this and every earlier window: the slow path
                        w = live[end] = {}
                        heapq.heappush(pending, end)
                        self._note_open()
                    acc = w.get(key, missing)
                    w[key] = init(record) if acc is missing else fold(acc, record)
        except Exception as exc:
            raise self._record_error(exc, record, ts) from exc

    def _slow_path(self, slow: list[Slow]) -> None:
        """Records for fired or late windows: add where allowed, re-fire, or send late."""
        wm = self.watermark
        late_limit = wm - self.lateness + 1  # end <= late_limit: the window is late
        size, slide = self.size, self.slide
        fired, live = self._fired, self._live
        out: list[Any] = []
        out_ts: list[int] = []
        late: list[Any] = []
        late_ts: list[int] = []
        for record, key, ts, first_end in slow:
            largest_end = ts - (ts - self.offset) % slide + size
            if largest_end <= late_limit:  # late for all its windows
                late.append(record)
                late_ts.append(ts)
                continue
            for end in range(first_end, ts, -slide):
                if end <= late_limit:
                    break
                w = live.get(end)
                if w is not None:  # a live window (sliding: created by this batch)
                    acc = w.get(key, _MISSING)
                    w[key] = self._init(record) if acc is _MISSING else self._fold(acc, record)
                    continue
                w = fired.get(end)
                if w is None:  # first record of a window whose time has passed
                    w = fired[end] = {}
                    heapq.heappush(self._cleanup, end)
                    self._note_open()
                acc = w.get(key, _MISSING)
                w[key] = self._init(record) if acc is _MISSING else self._fold(acc, record)
                if end - 1 <= wm:  # late but allowed: fire this key's window again now
                    self._emit_keys(end, w, (key,), out, out_ts)
                else:  # a restored fired window, before the watermark caught up: re-arm
                    keys = self._rearmed.get(end)
                    if keys is None:
                        keys = self._rearmed[end] = {}
                        heapq.heappush(self._pending, end)
                    keys[key] = None
        self.emit_late(late, late_ts)
        self.emit_results(out, out_ts)

    def _add_processing_time(self, records: list[Any], keys: list[Any], now: int) -> None:
        init, fold, live = self._init, self._fold, self._live
        last_start = now - (now - self.offset) % self.slide
        record: Any = None
        try:
            for start in range(last_start, now - self.size, -self.slide):
                end = start + self.size
                w = live.get(end)
                if w is None:
                    w = live[end] = {}
                    heapq.heappush(self._pending, end)
                    self.scheduler.request(end - 1)
                    self._note_open()
                get = w.get
                for record, key in zip(records, keys, strict=True):
                    acc = get(key, _MISSING)
                    w[key] = init(record) if acc is _MISSING else fold(acc, record)
        except Exception as exc:
            raise user_error(exc, self.name, record) from exc

    def _record_error(self, exc: Exception, record: Any, ts: Any) -> Exception:
        if ts is None or not isinstance(ts, int):
            return missing_timestamps(self.name, record)
        return user_error(exc, self.name, record)

    def _note_open(self) -> None:
        n = len(self._live) + len(self._fired)
        if n > self.peak_open_windows:
            self.peak_open_windows = n

    # -- firing -----------------------------------------------------------------------------
    def process_watermark(self, timestamp: int) -> None:
        self.watermark = timestamp
        if self.event_time:
            self._fire_until(timestamp)
        self.output.emit_watermark(timestamp)

    def _on_processing_time(self, now: int) -> None:
        self._fire_until(now)
        if self._pending:
            self.scheduler.request(self._pending[0] - 1)

    def _fire_until(self, time: int) -> None:
        pending = self._pending
        if not (pending and pending[0] - 1 <= time) and not (
            self._cleanup and self._cleanup[0] - 1 + self.lateness <= time
        ):
            return
        if self._guard is not None:
            self._guard.touch_all()  # firing moves and drops whole windows: all key groups
        self._generation += 1
        out: list[Any] = []
        out_ts: list[int] = []
        live, fired, lateness = self._live, self._fired, self.lateness
        while pending and pending[0] - 1 <= time:
            end = heapq.heappop(pending)
            w = live.pop(end, None)
            if w is not None:
                self._emit_window(end, w, out, out_ts)
                if lateness > 0:
                    fired[end] = w
                    heapq.heappush(self._cleanup, end)
                else:
                    self._clean(end, w)
            keys = self._rearmed.pop(end, None)
            if keys:
                self._emit_keys(end, fired[end], keys, out, out_ts)
        cleanup = self._cleanup
        while cleanup and cleanup[0] - 1 + lateness <= time:
            end = heapq.heappop(cleanup)
            self._clean(end, fired.pop(end))
        self.emit_results(out, out_ts)

    def _emit_window(self, end: int, w: dict[Any, Any], out: list[Any], out_ts: list[int]) -> None:
        results, result = self.results, self._result
        before = len(out)
        if results.passthrough and result is None:
            out.extend(w.values())
        elif results.passthrough and result is not None:
            out.extend(map(result, w.values()))
        else:
            self._emit_keys(end, w, w, out, out_ts)
            return
        out_ts.extend([end - 1] * (len(out) - before))

    def _emit_keys(
        self, end: int, w: dict[Any, Any], keys: Any, out: list[Any], out_ts: list[int]
    ) -> None:
        results, result = self.results, self._result
        window = (end - self.size, end)
        key: Any = None
        try:
            for key in keys:
                self.set_key(key)
                acc = w[key]
                emitted = results.emit(key, window, acc if result is None else result(acc))
                if emitted is not None:
                    before = len(out)
                    out.extend(emitted)
                    out_ts.extend([end - 1] * (len(out) - before))
        except Exception as exc:
            raise user_error(exc, self.name + f" (window {window}, key {key!r})", None) from exc

    def _clean(self, end: int, w: dict[Any, Any]) -> None:
        if self.results.has_clear:
            window = (end - self.size, end)
            for key in w:
                self.set_key(key)
                self.results.clear(window)

    # -- key-group snapshots ----------------------------------------------------------------
    def guard_key_groups(self, guard: KeyGroupGuard) -> bool:
        if not super().guard_key_groups(guard):
            return False
        self._guard = guard
        self._index = None
        return True

    def unguard_key_groups(self) -> None:
        super().unguard_key_groups()
        self._guard = None
        self._index = None

    def _touch_batch(self, guard: KeyGroupGuard, batch: Batch) -> None:
        kgs = batch.key_groups
        if kgs is None:
            assert batch.keys is not None
            kgs = [self.key_groups.key_group(key) for key in batch.keys]
        pending = guard.pending
        for kg in set(kgs):
            if kg in pending:
                guard.touch(kg)

    def _by_key_group(self) -> dict[int, list[Any]]:
        cached = self._index
        if cached is not None and (self._guard is not None or cached[0] == self._generation):
            return cached[1]  # while guarded, the key groups still to serialize are unchanged
        index: dict[int, list[Any]] = {}
        kg_of = self.key_groups.key_group
        for fired, windows in ((False, self._live), (True, self._fired)):
            for end, w in windows.items():
                rearmed = self._rearmed.get(end, {})
                for key, acc in w.items():
                    index.setdefault(kg_of(key), []).append((end, fired, key, acc, key in rearmed))
        self._index = (self._generation, index)
        return index

    def snapshot_key_group(self, key_group: int) -> bytes:
        """The accumulators of ``key_group`` in every open window, as one blob."""
        self._check_key_group(key_group)
        by_window: dict[tuple[int, bool], list[Any]] = {}
        for end, fired, key, acc, rearmed in self._by_key_group().get(key_group, []):
            by_window.setdefault((end, fired), []).append((key, acc, rearmed))
        out = bytearray(_HEADER.pack(_MAGIC, _VERSION, key_group, len(by_window)))
        serialize = DEFAULT_SERIALIZER.serialize
        for (end, fired), entries in by_window.items():
            out += _WINDOW.pack(end, fired, len(entries))
            for key, acc, rearmed in entries:
                raw_key, raw_acc = keycodec.encode_key(key), serialize(acc)
                out += _U32.pack(len(raw_key)) + raw_key + bytes((rearmed,))
                out += _U32.pack(len(raw_acc)) + raw_acc
        return bytes(out)

    def restore_key_group(self, key_group: int, data: bytes) -> None:
        """Add one key group's accumulators (snapshotted at any parallelism)."""
        self._check_key_group(key_group)
        magic, version, blob_kg, n_windows = _HEADER.unpack_from(data, 0)
        if magic != _MAGIC or version != _VERSION or blob_kg != key_group:
            raise errors.StateError(
                f"not a window blob of key group {key_group} (magic {bytes(magic)!r}, version "
                f"{version}, key group {blob_kg})"
            )
        pos = _HEADER.size
        deserialize = DEFAULT_SERIALIZER.deserialize
        for _ in range(n_windows):
            end, fired, count = _WINDOW.unpack_from(data, pos)
            pos += _WINDOW.size
            w = self._restore_window(end, bool(fired))
            for _ in range(count):
                (n,) = _U32.unpack_from(data, pos)
                key = keycodec.decode_key(data[pos + 4 : pos + 4 + n])
                rearmed = data[pos + 4 + n]
                pos += 5 + n
                (n,) = _U32.unpack_from(data, pos)
                w[key] = deserialize(data[pos + 4 : pos + 4 + n])
                pos += 4 + n
                if rearmed:
                    keys = self._rearmed.setdefault(end, {})
                    if not keys:
                        heapq.heappush(self._pending, end)
                    keys[key] = None
        self._generation += 1

    def _restore_window(self, end: int, fired: bool) -> dict[Any, Any]:
        windows, heap = (self._fired, self._cleanup) if fired else (self._live, self._pending)
        w = windows.get(end)
        if w is None:
            w = windows[end] = {}
            heapq.heappush(heap, end)
            self._note_open()
            if not fired and not self.event_time:
                self.scheduler.request(end - 1)
        return w

    def _check_key_group(self, key_group: int) -> None:
        kg_range = self.ctx.key_group_range
        if kg_range is None or key_group not in kg_range:
            raise errors.StateError(
                f"key group {key_group} is outside the key groups of '{self.name}' "
                f"({None if kg_range is None else kg_range.to_list()})"
            )

    def snapshot_operator_sections(self, key_group: int) -> dict[str, bytes]:
        return {SECTION_WINDOWS: self.snapshot_key_group(key_group)}

    def snapshot_keyed_sections(self, key_group: int) -> dict[str, bytes]:
        return {
            SECTION_BACKEND: self.backend.snapshot_key_group(key_group),
            **self.snapshot_operator_sections(key_group),
        }

    def restore_keyed_sections(self, key_group: int, sections: dict[str, bytes]) -> None:
        if SECTION_BACKEND in sections:
            self.backend.restore_key_group(key_group, sections[SECTION_BACKEND])
        if SECTION_WINDOWS in sections:
            self.restore_key_group(key_group, sections[SECTION_WINDOWS])

    def open_windows(self) -> int:
        return len(self._live) + len(self._fired)


def _accumulation(
    spec: WindowSpec,
) -> tuple[Callable[[Any], Any], Callable[[Any, Any], Any], Callable[[Any], Any] | None]:
    """``(init(record), fold(acc, record), result(acc) or None)`` of the window contents."""
    contents = spec.contents
    if contents.kind == "reduce":
        assert contents.reduce is not None
        return (lambda record: record), contents.reduce, None
    if contents.kind == "aggregate":
        agg = contents.aggregate
        assert agg is not None
        add, create = agg.add, agg.create_accumulator
        return (lambda record: add(record, create())), (lambda acc, r: add(r, acc)), agg.get_result

    def fold_list(acc: list[Any], record: Any) -> list[Any]:
        acc.append(record)
        return acc

    return (lambda record: [record]), fold_list, None
