"""Stateless one-input operators: map, flat_map, filter and process.

Each works on a whole batch with the tightest loop that still lets a failure name its record
(the record is ``records[len(out)]`` for map; the loop variable elsewhere). Timestamps, when the
batch has them, stay parallel to the records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import compress
from typing import Any

from streamjob import errors, functions
from streamjob.runtime.events import Batch
from streamjob.runtime.failures import user_error
from streamjob.runtime.operators.base import StreamOperator


class UserFunctionOperator(StreamOperator):
    """An operator wrapping one user function object (open/close lifecycle)."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.runtime_context: functions.RuntimeContext | None = None

    def open(self) -> None:
        if isinstance(self.function, functions.Function):
            self.runtime_context = functions.RuntimeContext(self.ctx, self.keyed_backend())
            self.function.open(self.runtime_context)

    def keyed_backend(self) -> Any | None:
        return None

    def close(self) -> None:
        if isinstance(self.function, functions.Function):
            self.function.close()


def resolve(function: Any, method: str) -> Callable[..., Any]:
    """The callable behind ``function``: its ``method`` for Function objects, else itself."""
    if isinstance(function, functions.Function):
        return getattr(function, method)  # type: ignore[no-any-return]
    if callable(function):
        return function  # type: ignore[no-any-return]
    raise TypeError(f"{function!r} is neither callable nor a {method}() function object")


class MapOperator(UserFunctionOperator):
    def open(self) -> None:
        super().open()
        self._fn = resolve(self.function, "map")

    def process_batch(self, batch: Batch, input_index: int) -> None:
        fn = self._fn
        records = batch.records
        out: list[Any] = []
        append = out.append
        try:
            for record in records:
                append(fn(record))
        except Exception as exc:
            raise user_error(exc, self.name, records[len(out)]) from exc
        self.output.emit(Batch(out, batch.timestamps))


class FilterOperator(UserFunctionOperator):
    def open(self) -> None:
        super().open()
        self._fn = resolve(self.function, "filter")

    def process_batch(self, batch: Batch, input_index: int) -> None:
        fn = self._fn
        records = batch.records
        flags: list[Any] = []
        append = flags.append
        try:
            for record in records:
                append(fn(record))
        except Exception as exc:
            raise user_error(exc, self.name, records[len(flags)]) from exc
        out = list(compress(records, flags))
        if out:
            ts = batch.timestamps
            self.output.emit(Batch(out, None if ts is None else list(compress(ts, flags))))


class FlatMapOperator(UserFunctionOperator):
    def open(self) -> None:
        super().open()
        self._fn = resolve(self.function, "flat_map")

    def process_batch(self, batch: Batch, input_index: int) -> None:
        fn = self._fn
        out: list[Any] = []
        extend = out.extend
        timestamps = batch.timestamps
        record: Any = None
        try:
            if timestamps is None:
                for record in batch.records:
                    result = fn(record)
                    if result is not None:
                        extend(result)
                out_ts = None
            else:
                out_ts = []
                for record, ts in zip(batch.records, timestamps, strict=True):
                    result = fn(record)
                    if result is not None:
                        before = len(out)
                        extend(result)
                        out_ts.extend([ts] * (len(out) - before))
        except Exception as exc:
            raise user_error(exc, self.name, record) from exc
        if out:
            self.output.emit(Batch(out, out_ts))


class _ProcessContext(functions.ProcessContext):
    """Context of a non-keyed ProcessFunction; side outputs are gathered per batch."""

    def __init__(self, operator: ProcessOperator) -> None:
        self._operator = operator
        self.current_timestamp: int | None = None
        self.side: dict[str, tuple[list[Any], list[int]]] = {}

    def timestamp(self) -> int | None:
        return self.current_timestamp

    def output(self, output_tag: functions.OutputTag, value: Any) -> None:
        records, stamps = self.side.setdefault(output_tag.tag_id, ([], []))
        records.append(value)
        if self.current_timestamp is not None:
            stamps.append(self.current_timestamp)

    def timer_service(self) -> functions.TimerService:
        raise errors.StateError(
            "timers exist only on keyed streams: use key_by(...).process(KeyedProcessFunction)"
        )

    def flush_side_outputs(self, output: Any) -> None:
        if not self.side:
            return
        for tag, (records, stamps) in self.side.items():
            output.emit_side(tag, Batch(records, stamps if len(stamps) == len(records) else None))
        self.side = {}


def run_process_loop(
    fn: Callable[[Any, Any], Iterable[Any] | None],
    ctx: Any,
    batch: Batch,
    name: str,
) -> tuple[list[Any], list[int] | None]:
    """Call ``fn(record, ctx)`` for each record of a non-keyed batch, gathering outputs."""
    out: list[Any] = []
    extend = out.extend
    timestamps = batch.timestamps
    record: Any = None
    try:
        if timestamps is None:
            for record in batch.records:
                result = fn(record, ctx)
                if result is not None:
                    extend(result)
            return out, None
        out_ts: list[int] = []
        for record, ts in zip(batch.records, timestamps, strict=True):
            ctx.current_timestamp = ts
            result = fn(record, ctx)
            if result is not None:
                before = len(out)
                extend(result)
                out_ts.extend([ts] * (len(out) - before))
        return out, out_ts
    except Exception as exc:
        raise user_error(exc, name, record) from exc


class ProcessOperator(UserFunctionOperator):
    """A ``ProcessFunction`` on a non-keyed stream."""

    def open(self) -> None:
        super().open()
        self._fn = resolve(self.function, "process_element")
        self._ctx = _ProcessContext(self)

    def process_batch(self, batch: Batch, input_index: int) -> None:
        out, out_ts = run_process_loop(self._fn, self._ctx, batch, self.name)
        self._ctx.flush_side_outputs(self.output)
        if out:
            self.output.emit(Batch(out, out_ts))
