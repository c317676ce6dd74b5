"""Keyed one-input operators: ``process(KeyedProcessFunction)``, ``reduce``, ``sum``, ``min``...

They sit behind a key-group partitioner, so each batch carries its keys and key groups; setting
the current key is two attribute stores on the state backend. The hot loop per record is: set
key, call the user function, gather outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamjob import functions
from streamjob.runtime import timers
from streamjob.runtime.events import Batch
from streamjob.runtime.failures import user_error
from streamjob.runtime.operators.base import OperatorContext, Output
from streamjob.runtime.operators.stateless import UserFunctionOperator, resolve
from streamjob.runtime.timers import (
    SECTION_BACKEND,
    SECTION_TIMERS,
    InternalTimerService,
    KeyGroupGuard,
)


class KeyedOperatorMixin:
    """Holds the keyed state backend the task gives a keyed operator.

    Copy-on-write snapshots (the checkpoint layer's): ``guard_key_groups(guard)`` at the
    barrier makes every part of the operator's keyed state (the backend's dicts, and in
    subclasses timers and window contents) call ``guard.touch(kg)`` before it changes a key
    group the snapshot has not serialized; the snapshot serializes a key group with
    ``snapshot_operator_sections`` plus the backend's parts, then ``release_key_group(kg)``
    (the backend keeps the barrier's value of each entry a record changes meanwhile);
    ``unguard_key_groups()`` ends it. False from ``guard_key_groups``: the backend cannot
    (RocksDB), snapshot synchronously.
    """

    is_keyed = True
    backend: Any = None

    def set_keyed_backend(self, backend: Any) -> None:
        self.backend = backend

    def keyed_backend(self) -> Any | None:
        return self.backend

    def guard_key_groups(self, guard: timers.KeyGroupGuard) -> bool:
        begin = getattr(self.backend, "begin_copy_on_write", None)
        if begin is None:
            return False
        begin(guard.pending, guard.touch)
        return True

    def release_key_group(self, key_group: int) -> int:
        """The key group is serialized: drop its guards; the entries they copied on write."""
        return int(self.backend.release_key_group(key_group))

    def unguard_key_groups(self) -> None:
        self.backend.end_copy_on_write()


class TimerSectionsMixin(KeyedOperatorMixin):
    """Keyed operators with a timer service (process functions, windows): a key group's
    snapshot is the backend's blob plus the timers' section, both copy-on-write while a
    checkpoint serializes key groups after its barrier."""

    timers: InternalTimerService

    def guard_key_groups(self, guard: KeyGroupGuard) -> bool:
        if not super().guard_key_groups(guard):
            return False
        self.timers.set_guard(guard)
        return True

    def unguard_key_groups(self) -> None:
        super().unguard_key_groups()
        self.timers.set_guard(None)

    def snapshot_operator_sections(self, key_group: int) -> dict[str, bytes]:
        """The operator's own sections of ``key_group`` (the backend's come separately)."""
        return {SECTION_TIMERS: self.timers.snapshot_key_group(key_group)}

    def snapshot_keyed_sections(self, key_group: int) -> dict[str, bytes]:
        return {
            SECTION_BACKEND: self.backend.snapshot_key_group(key_group),
            **self.snapshot_operator_sections(key_group),
        }

    def restore_keyed_sections(self, key_group: int, sections: dict[str, bytes]) -> None:
        state = sections.get(SECTION_BACKEND)
        if state is not None:
            self.backend.restore_key_group(key_group, state)
        timer_blob = sections.get(SECTION_TIMERS)
        if timer_blob is not None:
            self.timers.restore_key_group(key_group, timer_blob)


class KeyedContext(functions.OnTimerContext):
    """The ``ctx`` of a keyed process function (also its on_timer context)."""

    def __init__(self, operator: KeyedProcessOperator) -> None:
        self._operator = operator
        self._backend = operator.backend
        self.current_timestamp: int | None = None
        self.current_domain = functions.TimeDomain.EVENT_TIME
        self.side: dict[str, tuple[list[Any], list[int]]] = {}

    def timestamp(self) -> int | None:
        return self.current_timestamp

    def get_current_key(self) -> Any:
        return self._backend.current_key

    def output(self, output_tag: functions.OutputTag, value: Any) -> None:
        records, stamps = self.side.setdefault(output_tag.tag_id, ([], []))
        records.append(value)
        if self.current_timestamp is not None:
            stamps.append(self.current_timestamp)

    def timer_service(self) -> functions.TimerService:
        return self._operator.timer_service()

    def time_domain(self) -> functions.TimeDomain:
        return self.current_domain

    def flush_side_outputs(self, output: Output) -> None:
        if not self.side:
            return
        for tag, (records, stamps) in self.side.items():
            output.emit_side(tag, Batch(records, stamps if len(stamps) == len(records) else None))
        self.side = {}


class KeyedProcessOperator(TimerSectionsMixin, UserFunctionOperator):
    """Runs a ``KeyedProcessFunction`` (or a plain ``(value, ctx)`` callable) per record.

    Timers (:mod:`streamjob.runtime.timers`): event-time timers fire when a watermark reaches
    them, with their key current, before the watermark is forwarded (their outputs carry the
    timer's timestamp); processing-time timers fire through the mailbox (outputs without a
    timestamp). ``snapshot_keyed_sections(kg)`` covers the keyed state and the timers.
    """

    def setup(self, ctx: OperatorContext, output: Output) -> None:
        super().setup(ctx, output)
        assert ctx.key_group_range is not None
        self.scheduler = timers.ProcessingTimeScheduler(
            ctx.clock, ctx.mailbox, self._on_processing_time
        )
        self.timers = timers.InternalTimerService(
            max_parallelism=ctx.max_parallelism,
            key_group_range=ctx.key_group_range,
            scheduler=self.scheduler,
        )
        self._timer_service: timers.KeyedTimerService | None = None

    def open(self) -> None:
        super().open()
        self._fn = resolve(self.function, "process_element")
        self._on_timer: Callable[[int, Any], Any] | None = getattr(self.function, "on_timer", None)
        self._ctx = KeyedContext(self)
        self.timers.schedule_next()

    def timer_service(self) -> functions.TimerService:
        service = self._timer_service
        if service is None:
            service = self._timer_service = timers.KeyedTimerService(
                self.timers, self.backend, self.ctx.clock
            )
        return service

    def process_batch(self, batch: Batch, input_index: int) -> None:
        fn = self._fn
        ctx = self._ctx
        backend = self.backend
        out: list[Any] = []
        extend = out.extend
        timestamps = batch.timestamps
        keys = batch.keys
        kgs = batch.key_groups
        if keys is None or kgs is None:
            raise RuntimeError(f"operator '{self.name}' is keyed but got a batch without keys")
        record: Any = None
        out_ts: list[int] | None = None
        try:
            if timestamps is None:
                ctx.current_timestamp = None
                for record, key, kg in zip(batch.records, keys, kgs, strict=True):
                    backend.current_key = key
                    backend.current_key_group = kg
                    result = fn(record, ctx)
                    if result is not None:
                        extend(result)
            else:
                out_ts = []
                for record, key, kg, ts in zip(batch.records, keys, kgs, timestamps, strict=True):
                    backend.current_key = key
                    backend.current_key_group = kg
                    ctx.current_timestamp = ts
                    result = fn(record, ctx)
                    if result is not None:
                        before = len(out)
                        extend(result)
                        out_ts.extend([ts] * (len(out) - before))
        except Exception as exc:
            raise user_error(exc, self.name, record) from exc
        ctx.flush_side_outputs(self.output)
        if out:
            self.output.emit(Batch(out, out_ts))

    # -- timers -----------------------------------------------------------------------------
    def process_watermark(self, timestamp: int) -> None:
        self._fire_timers(functions.TimeDomain.EVENT_TIME, timestamp)
        self.output.emit_watermark(timestamp)

    def _on_processing_time(self, now: int) -> None:
        self._fire_timers(functions.TimeDomain.PROCESSING_TIME, now)

    def _fire_timers(self, domain: functions.TimeDomain, time: int) -> None:
        ctx = self._ctx
        backend = self.backend
        on_timer = self._on_timer
        out: list[Any] = []
        out_ts: list[int] = []

        def fire(ts: int, key: Any, kg: int, namespace: Any) -> None:
            backend.current_key = key
            backend.current_key_group = kg
            ctx.current_timestamp = ts
            ctx.current_domain = domain
            if on_timer is None:
                return
            try:
                result = on_timer(ts, ctx)
            except Exception as exc:
                raise user_error(exc, self.name + " on_timer", None) from exc
            if result is not None:
                before = len(out)
                out.extend(result)
                out_ts.extend([ts] * (len(out) - before))

        if domain is functions.TimeDomain.EVENT_TIME:
            self.timers.advance_watermark(time, fire)
        else:
            self.timers.advance_processing_time(time, fire)
        ctx.current_domain = functions.TimeDomain.EVENT_TIME
        ctx.flush_side_outputs(self.output)
        if out:
            event_time = domain is functions.TimeDomain.EVENT_TIME
            self.output.emit(Batch(out, out_ts if event_time else None))

    def close(self) -> None:
        self.scheduler.close()
        super().close()


class ReduceOperator(KeyedOperatorMixin, UserFunctionOperator):
    """Keyed rolling reduce: emits the updated aggregate for every input record."""

    STATE_NAME = "_reduce"

    def open(self) -> None:
        super().open()
        from streamjob.state import ValueStateDescriptor

        self._reduce: Callable[[Any, Any], Any] = resolve(self.function, "reduce")
        self._state = self.backend.get_state(ValueStateDescriptor(self.STATE_NAME))

    def process_batch(self, batch: Batch, input_index: int) -> None:
        reduce = self._reduce
        backend = self.backend
        value = self._state.value
        update = self._state.update
        out: list[Any] = []
        append = out.append
        record: Any = None
        keys = batch.keys
        kgs = batch.key_groups
        if keys is None or kgs is None:
            raise RuntimeError(f"operator '{self.name}' is keyed but got a batch without keys")
        try:
            for record, key, kg in zip(batch.records, keys, kgs, strict=True):
                backend.current_key = key
                backend.current_key_group = kg
                current = value()
                if current is not None:
                    record = reduce(current, record)
                update(record)
                append(record)
        except Exception as exc:
            raise user_error(exc, self.name, record) from exc
        self.output.emit(Batch(out, batch.timestamps))


def _field_getter(field: int | str) -> Callable[[Any], Any]:
    return lambda record: record[field]


def _replace_field(record: Any, field: int | str, value: Any) -> Any:
    if isinstance(record, tuple):
        assert isinstance(field, int)
        return (*record[:field], value, *record[field + 1 :])
    if isinstance(record, list):
        assert isinstance(field, int)
        copy = list(record)
        copy[field] = value
        return copy
    if isinstance(record, dict):
        return {**record, field: value}
    raise TypeError(
        f"sum/min/max by field {field!r} need tuples, lists or dicts, got {type(record).__name__}"
    )


def aggregation(kind: str, field: int | str | None) -> Callable[[Any, Any], Any]:
    """Reduce functions behind ``sum``, ``min``, ``max``, ``min_by`` and ``max_by``.

    ``min``/``max`` change only the field (other fields keep the first record's values, as in
    Flink); ``min_by``/``max_by`` keep the whole record that holds the extreme value.
    """
    if field is None:
        if kind == "sum":
            return lambda a, b: a + b
        if kind in ("min", "min_by"):
            return lambda a, b: b if b < a else a
        if kind in ("max", "max_by"):
            return lambda a, b: b if b > a else a
        raise ValueError(kind)
    get = _field_getter(field)
    if kind == "sum":
        return lambda a, b: _replace_field(a, field, get(a) + get(b))
    if kind == "min":
        return lambda a, b: _replace_field(a, field, get(b)) if get(b) < get(a) else a
    if kind == "max":
        return lambda a, b: _replace_field(a, field, get(b)) if get(b) > get(a) else a
    if kind == "min_by":
        return lambda a, b: b if get(b) < get(a) else a
    if kind == "max_by":
        return lambda a, b: b if get(b) > get(a) else a
    raise ValueError(kind)
