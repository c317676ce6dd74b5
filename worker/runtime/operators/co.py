"""Two-input operators: ``connect(...).process(CoProcessFunction)`` and the keyed variant.

A two-input operator heads its task (it is never chained into); each batch arrives with the
logical input it came from (0 or 1), and the task's watermark valve already takes the minimum
over the channels of both inputs. The keyed variant (after ``connect(...).key_by(k1, k2)`` or
on two keyed streams) is a :class:`~streamjob.runtime.operators.keyed.KeyedProcessOperator`
with two element functions: same keyed state, same timers, same key-group snapshots.
``map``/``flat_map`` of connected streams are co-process functions too (:class:`CoMapAdapter`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streamjob import errors, functions
from streamjob.runtime.events import Batch
from streamjob.runtime.operators.keyed import KeyedContext, KeyedProcessOperator
from streamjob.runtime.operators.stateless import UserFunctionOperator, resolve, run_process_loop


class _CoContext(functions.ProcessContext):
    """Context of a non-keyed co-process function; side outputs are gathered per batch."""

    def __init__(self) -> None:
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
            "timers exist only on keyed streams: use connect(...).key_by(key1, key2)"
            ".process(KeyedCoProcessFunction)"
        )


class CoProcessOperator(UserFunctionOperator):
    """A ``CoProcessFunction`` on two non-keyed inputs."""

    def open(self) -> None:
        super().open()
        self._fns = (
            resolve(self.function, "process_element1"),
            resolve(self.function, "process_element2"),
        )
        self._ctx = _CoContext()

    def process_batch(self, batch: Batch, input_index: int) -> None:
        ctx = self._ctx
        if batch.timestamps is None:
            ctx.current_timestamp = None
        out, out_ts = run_process_loop(self._fns[input_index], ctx, batch, self.name)
        if ctx.side:
            for tag, (records, stamps) in ctx.side.items():
                self.output.emit_side(
                    tag, Batch(records, stamps if len(stamps) == len(records) else None)
                )
            ctx.side = {}
        if out:
            self.output.emit(Batch(out, out_ts))


class KeyedCoProcessOperator(KeyedProcessOperator):
    """A ``KeyedCoProcessFunction`` (or a ``CoProcessFunction``) on two keyed inputs."""

    def open(self) -> None:
        UserFunctionOperator.open(self)
        self._fns = (
            resolve(self.function, "process_element1"),
            resolve(self.function, "process_element2"),
        )
        self._fn = self._fns[0]
        self._on_timer = getattr(self.function, "on_timer", None)
        self._ctx = KeyedContext(self)
        self.timers.schedule_next()

    def process_batch(self, batch: Batch, input_index: int) -> None:
        self._fn = self._fns[input_index]
        super().process_batch(batch, input_index)


class CoMapAdapter(functions.Function):
    """``connect(...).map(f)`` / ``flat_map(f)`` as a co-process function.

    ``f`` has ``map1``/``map2`` (one output per record) or ``flat_map1``/``flat_map2``.
    """

    def __init__(self, function: Any, flat: bool) -> None:
        self.function = function
        names = ("flat_map1", "flat_map2") if flat else ("map1", "map2")
        missing = [n for n in names if not callable(getattr(function, n, None))]
        if missing:
            raise errors.JobDefinitionError(
                f"connected {'flat_map' if flat else 'map'} needs an object with "
                f"{' and '.join(names)}(value); {function!r} lacks {', '.join(missing)}"
            )
        self._flat = flat
        self._names = names

    def open(self, runtime_context: functions.RuntimeContext) -> None:
        if isinstance(self.function, functions.Function):
            self.function.open(runtime_context)
        one: Callable[[Any], Any] = getattr(self.function, self._names[0])
        two: Callable[[Any], Any] = getattr(self.function, self._names[1])
        self._one, self._two = one, two

    def close(self) -> None:
        if isinstance(self.function, functions.Function):
            self.function.close()

    def process_element1(self, value: Any, ctx: Any) -> Iterable[Any] | None:
        return self._one(value) if self._flat else (self._one(value),)

    def process_element2(self, value: Any, ctx: Any) -> Iterable[Any] | None:
        return self._two(value) if self._flat else (self._two(value),)
