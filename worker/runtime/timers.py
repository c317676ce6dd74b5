"""Timers of a keyed operator: event time and processing time, per key and namespace.

Flink's ``InternalTimerService`` without an object per timer:

* a :class:`TimerQueue` per time domain holds ``{timestamp: {(key, namespace): key_group}}``
  plus a heap of the distinct timestamps, so a timer is deduplicated per
  ``(key, namespace, timestamp)`` by a dict store (a tuple's C hash, never a Python
  ``__hash__``) and many timers at one time cost one heap entry. The namespace is ``None`` for
  user timers and the window's ``(start, end)`` for window timers.
* event-time timers fire when the operator's watermark reaches them
  (:meth:`InternalTimerService.advance_watermark`), in timestamp order; a timer registered or
  deleted while others fire is honoured, as in Flink.
* processing-time timers fire through the operator's mailbox when the injected clock reaches
  them (:class:`ProcessingTimeScheduler`: an asyncio timer for the system clock, a listener for
  a ``ManualClock``), so they never run concurrently with records.
* timers are held by key group: ``snapshot_key_group(kg)`` / ``restore_key_group(kg, data)``
  write and read one self-contained blob per key group (keys and namespaces in the frozen key
  encoding), so any parallelism restores any snapshot.
* copy-on-write snapshots: while a :class:`KeyGroupGuard` is set (``set_guard``), registering,
  deleting or firing a timer of a key group the snapshot has not serialized yet calls
  ``guard.touch(kg)`` first, so the snapshot holds the timers as they were at the barrier. The
  per-key-group index a snapshot reads is then built once and kept (the key groups it has not
  serialized cannot have changed), instead of being rebuilt after every change.

:class:`KeyedTimerService` is the user-facing ``TimerService`` of keyed process functions.
"""

from __future__ import annotations

import asyncio
import heapq
import struct
from collections.abc import Callable, Container
from typing import Any, Protocol

from streamjob import errors, functions, keycodec
from streamjob.clock import Clock
from streamjob.keygroups import KeyGroupRange
from streamjob.runtime.events import MIN_WATERMARK
from streamjob.state import canonical

#: ``snapshot_keyed_sections`` names (the checkpoint layer takes "backend" as the base blob)
SECTION_BACKEND = "backend"
SECTION_TIMERS = "timers"

FireFn = Callable[[int, Any, int, Any], None]
"""``fire(timestamp, key, key_group, namespace)``."""

_MISSING: Any = object()


class KeyGroupGuard(Protocol):
    """A snapshot in progress that has not serialized the key groups in ``pending`` yet:
    whoever is about to change state of one of them calls ``touch(kg)`` first (it serializes
    that key group); ``touch_all()`` serializes them all (before a change that spans them)."""

    @property
    def pending(self) -> Container[int]: ...

    def touch(self, key_group: int) -> None: ...

    def touch_all(self) -> None: ...


_MAGIC = b"SJTM"
_VERSION = 1
_HEADER = struct.Struct(">4sHI")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")


class TimerQueue:
    """The timers of one time domain, bucketed by timestamp (see the module docstring)."""

    __slots__ = ("buckets", "heap")

    def __init__(self) -> None:
        self.buckets: dict[int, dict[tuple[Any, Any], int]] = {}
        self.heap: list[int] = []

    def add(self, timestamp: int, key: Any, namespace: Any, key_group: int) -> bool:
        """Add a timer (a no-op if present); True if ``timestamp`` is a new earliest time."""
        bucket = self.buckets.get(timestamp)
        if bucket is None:
            self.buckets[timestamp] = {(key, namespace): key_group}
            heapq.heappush(self.heap, timestamp)
            return self.heap[0] == timestamp
        bucket[(key, namespace)] = key_group
        return False

    def remove(self, timestamp: int, key: Any, namespace: Any) -> None:
        bucket = self.buckets.get(timestamp)
        if bucket is not None:
            bucket.pop((key, namespace), None)

    def head(self) -> int | None:
        """The earliest timestamp holding a timer (empty buckets are dropped on the way)."""
        heap, buckets = self.heap, self.buckets
        while heap and not buckets[heap[0]]:
            del buckets[heapq.heappop(heap)]
        return heap[0] if heap else None

    def key_group_of(self, timestamp: int, key: Any, namespace: Any) -> int | None:
        bucket = self.buckets.get(timestamp)
        return None if bucket is None else bucket.get((key, namespace))

    def fire_until(self, limit: int, fire: FireFn, guard: KeyGroupGuard | None = None) -> None:
        """Fire every timer at or before ``limit``, in timestamp order (touching ``guard``'s
        pending key group of each before it goes)."""
        heap, buckets = self.heap, self.buckets
        while heap and heap[0] <= limit:
            ts = heapq.heappop(heap)
            bucket = buckets[ts]
            # The bucket stays registered while it fires: a timer added at ``ts`` meanwhile
            # joins it and fires in this loop; one deleted meanwhile is skipped.
            while bucket:
                for key_ns, kg in list(bucket.items()):
                    if guard is not None and kg in guard.pending:
                        guard.touch(kg)
                    if bucket.pop(key_ns, _MISSING) is _MISSING:
                        continue
                    fire(ts, key_ns[0], kg, key_ns[1])
            del buckets[ts]

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())

    def entries(self) -> list[tuple[int, Any, Any, int]]:
        """``(timestamp, key, namespace, key_group)`` of every timer."""
        return [
            (ts, key, ns, kg)
            for ts, bucket in self.buckets.items()
            for (key, ns), kg in bucket.items()
        ]


class ProcessingTimeScheduler:
    """Calls ``on_time(now)`` through the mailbox once the clock reaches a requested time.

    With a clock that has ``add_listener`` (the ``ManualClock``) every advance past the
    requested time posts the call; otherwise an asyncio timer does. Without a mailbox (operator
    tests) the call runs at once; without a running loop and a system clock nothing is
    scheduled and the owner calls its firing method by hand.
    """

    def __init__(
        self,
        clock: Clock,
        mailbox: Callable[[Callable[[], None]], None] | None,
        on_time: Callable[[int], None],
    ) -> None:
        self._clock = clock
        self._mailbox = mailbox
        self._on_time = on_time
        self._wanted: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._posted = False
        self._closed = False
        add_listener = getattr(clock, "add_listener", None)
        self._manual = callable(add_listener)
        if self._manual:
            add_listener(self._on_clock)  # type: ignore[misc]

    def request(self, timestamp: int) -> None:
        """Make sure ``on_time`` runs once processing time reaches ``timestamp``."""
        if self._closed or (self._wanted is not None and self._wanted <= timestamp):
            return
        self._wanted = timestamp
        now = self._clock.now_ms()
        if self._manual:
            if now >= timestamp:
                self._post()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_later(max(0, timestamp - now) / 1000.0, self._post)

    def _on_clock(self, now: int) -> None:
        if self._wanted is not None and now >= self._wanted:
            self._post()

    def _post(self) -> None:
        self._handle = None
        if self._posted or self._closed:
            return
        self._posted = True
        if self._mailbox is None:
            self._run()
        else:
            self._mailbox(self._run)

    def _run(self) -> None:
        self._posted = False
        wanted = self._wanted
        if self._closed or wanted is None:
            return
        now = self._clock.now_ms()
        self._wanted = None
        if now < wanted:  # woke a little early (timer resolution): ask again
            self.request(wanted)
            return
        self._on_time(now)

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._manual:
            self._clock.remove_listener(self._on_clock)  # type: ignore[attr-defined]


class InternalTimerService:
    """Event-time and processing-time timers of one keyed operator subtask."""

    def __init__(
        self,
        *,
        max_parallelism: int,
        key_group_range: KeyGroupRange,
        scheduler: ProcessingTimeScheduler | None = None,
    ) -> None:
        self.max_parallelism = max_parallelism
        self.key_group_range = key_group_range
        self.scheduler = scheduler
        self.event = TimerQueue()
        self.processing = TimerQueue()
        self.current_watermark = MIN_WATERMARK
        self._index: dict[int, tuple[list[Any], list[Any]]] | None = None
        self.guard: KeyGroupGuard | None = None

    def set_guard(self, guard: KeyGroupGuard | None) -> None:
        """Start (a guard) or end (``None``) a copy-on-write snapshot of these timers."""
        self.guard = guard
        self._index = None

    def _changing(self, key_group: int | None) -> None:
        """Before a change of ``key_group``'s timers: let a pending snapshot take them first."""
        guard = self.guard
        if guard is None:
            self._index = None
        elif key_group is not None and key_group in guard.pending:
            guard.touch(key_group)

    # -- registering ------------------------------------------------------------------------
    def register_event_time(self, key: Any, key_group: int, namespace: Any, ts: int) -> None:
        self._changing(key_group)
        self.event.add(ts, key, namespace, key_group)

    def register_processing_time(self, key: Any, key_group: int, namespace: Any, ts: int) -> None:
        self._changing(key_group)
        if self.processing.add(ts, key, namespace, key_group) and self.scheduler is not None:
            self.scheduler.request(ts)

    def delete_event_time(self, key: Any, namespace: Any, ts: int) -> None:
        self._changing(self.event.key_group_of(ts, key, namespace))
        self.event.remove(ts, key, namespace)

    def delete_processing_time(self, key: Any, namespace: Any, ts: int) -> None:
        self._changing(self.processing.key_group_of(ts, key, namespace))
        self.processing.remove(ts, key, namespace)

    # -- firing -----------------------------------------------------------------------------
    def advance_watermark(self, watermark: int, fire: FireFn) -> None:
        """Set the current watermark, then fire every event-time timer at or before it."""
        self.current_watermark = watermark
        if self.event.heap and self.event.heap[0] <= watermark:
            if self.guard is None:
                self._index = None
            self.event.fire_until(watermark, fire, self.guard)

    def advance_processing_time(self, now: int, fire: FireFn) -> None:
        """Fire every processing-time timer at or before ``now``; ask for the next wakeup."""
        if self.processing.heap and self.processing.heap[0] <= now:
            if self.guard is None:
                self._index = None
            self.processing.fire_until(now, fire, self.guard)
        self.schedule_next()

    def schedule_next(self) -> None:
        head = self.processing.head()
        if head is not None and self.scheduler is not None:
            self.scheduler.request(head)

    def num_event_time_timers(self) -> int:
        return len(self.event)

    def num_processing_time_timers(self) -> int:
        return len(self.processing)

    # -- snapshots by key group -------------------------------------------------------------
    def _by_key_group(self) -> dict[int, tuple[list[Any], list[Any]]]:
        index = self._index
        if index is None:
            index = {}
            for domain, queue in enumerate((self.event, self.processing)):
                for ts, key, ns, kg in queue.entries():
                    index.setdefault(kg, ([], []))[domain].append((ts, key, ns))
            self._index = index
        return index

    def snapshot_key_group(self, key_group: int) -> bytes:
        """Every timer of ``key_group`` as one blob (empty lists when it has none)."""
        self._check_key_group(key_group)
        event, processing = self._by_key_group().get(key_group, ([], []))
        out = bytearray(_HEADER.pack(_MAGIC, _VERSION, key_group))
        for timers in (event, processing):
            out += _U32.pack(len(timers))
            for ts, key, ns in timers:
                out += _I64.pack(ts)
                for chunk in (keycodec.encode_key(key), canonical.encode_namespace(ns)):
                    out += _U32.pack(len(chunk))
                    out += chunk
        return bytes(out)

    def restore_key_group(self, key_group: int, data: bytes) -> None:
        """Add the timers of one blob (from any parallelism) to this service."""
        self._check_key_group(key_group)
        magic, version, blob_kg = _HEADER.unpack_from(data, 0)
        if magic != _MAGIC or version != _VERSION:
            raise errors.StateError(
                f"not a streamjob timer blob of version {_VERSION} (magic {bytes(magic)!r}, "
                f"version {version})"
            )
        if blob_kg != key_group:
            raise errors.StateError(
                f"the timer blob restored as key group {key_group} holds key group {blob_kg}"
            )
        pos = _HEADER.size
        view = memoryview(data)

        def chunk() -> bytes:
            nonlocal pos
            (length,) = _U32.unpack_from(view, pos)
            start = pos + 4
            pos = start + length
            return bytes(view[start:pos])

        for queue in (self.event, self.processing):
            (count,) = _U32.unpack_from(view, pos)
            pos += 4
            for _ in range(count):
                (ts,) = _I64.unpack_from(view, pos)
                pos += 8
                key = keycodec.decode_key(chunk())
                ns = canonical.decode_namespace(chunk())
                queue.add(ts, key, ns, key_group)
        self._index = None
        self.schedule_next()

    def _check_key_group(self, key_group: int) -> None:
        if key_group not in self.key_group_range:
            raise errors.StateError(
                f"key group {key_group} is outside this operator's key groups "
                f"{self.key_group_range.to_list()}: restore each key group into the subtask "
                "whose KeyGroupRange.of_operator(...) contains it"
            )


class KeyedTimerService(functions.TimerService):
    """``ctx.timer_service()`` of keyed process functions: timers of the current key."""

    def __init__(self, service: InternalTimerService, backend: Any, clock: Clock) -> None:
        self._service = service
        self._backend = backend
        self._clock = clock

    def _current(self) -> tuple[Any, int]:
        b = self._backend
        kg = b.current_key_group
        if kg is None:
            raise errors.StateError(
                "timers belong to a key: register them while processing a record or a timer, "
                "not in open() or close()"
            )
        return b.current_key, kg

    def current_processing_time(self) -> int:
        return self._clock.now_ms()

    def current_watermark(self) -> int:
        return self._service.current_watermark

    def register_event_time_timer(self, timestamp: int) -> None:
        key, kg = self._current()
        self._service.register_event_time(key, kg, None, timestamp)

    def register_processing_time_timer(self, timestamp: int) -> None:
        key, kg = self._current()
        self._service.register_processing_time(key, kg, None, timestamp)

    def delete_event_time_timer(self, timestamp: int) -> None:
        self._service.delete_event_time(self._current()[0], None, timestamp)

    def delete_processing_time_timer(self, timestamp: int) -> None:
        self._service.delete_processing_time(self._current()[0], None, timestamp)
