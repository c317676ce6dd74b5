"""Window functions (PyFlink's names) and how a window's contents become output records.

User side: :class:`ProcessWindowFunction` (sees all elements, the window, per-window and global
keyed state, side outputs) and the older :class:`WindowFunction` (``apply(key, window,
inputs)``); ``reduce``/``aggregate`` may be combined with either, as in Flink, and then the
function sees the single pre-aggregated result.

Runtime side: :class:`WindowContents` says how elements accumulate (reduce, aggregate, or a list
for process functions) and :class:`WindowResults` turns one key's contents of one window into
output records. Both window operators (:mod:`streamjob.windows.fast_operator`,
:mod:`streamjob.windows.generic_operator`) use them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streamjob import errors
from streamjob.clock import Clock
from streamjob.functions import Function, OutputTag
from streamjob.state import (
    AggregateFunction,
    AggregatingStateDescriptor,
    ListStateDescriptor,
    ReducingStateDescriptor,
    StateDescriptor,
)
from streamjob.windows.window import Window, WindowTuple, to_window


class KeyedStateStore:
    """Keyed state of the current key, in one namespace (a window, or none for global state)."""

    def __init__(self, backend: Any, namespace: Callable[[], Any]) -> None:
        self._backend = backend
        self._namespace = namespace

    def get_state(self, state_descriptor: StateDescriptor) -> Any:
        if self._backend is None:
            raise errors.StateError("window state is only available on a keyed window")
        state = self._backend.get_state(state_descriptor)
        state.set_current_namespace(self._namespace())
        return state

    get_list_state = get_state
    get_map_state = get_state
    get_reducing_state = get_state
    get_aggregating_state = get_state


class ProcessWindowFunction(Function):
    """Processes all elements of one key's window at once (``process``)."""

    class Context(abc.ABC):
        @abc.abstractmethod
        def window(self) -> Window: ...

        @abc.abstractmethod
        def current_processing_time(self) -> int: ...

        @abc.abstractmethod
        def current_watermark(self) -> int: ...

        @abc.abstractmethod
        def window_state(self) -> KeyedStateStore:
            """State of the current key in this window (clear it in ``clear``)."""

        @abc.abstractmethod
        def global_state(self) -> KeyedStateStore:
            """State of the current key across windows."""

        @abc.abstractmethod
        def output(self, output_tag: OutputTag, value: Any) -> None: ...

    @abc.abstractmethod
    def process(self, key: Any, context: Context, elements: Iterable[Any]) -> Iterable[Any] | None:
        """Outputs for the window's ``elements`` (timestamped with the window's end - 1)."""

    def clear(self, context: Context) -> None:
        """Called when the window is cleaned up (watermark past end + allowed lateness)."""


class WindowFunction(Function):
    """The older window function: ``apply(key, window, inputs)``."""

    @abc.abstractmethod
    def apply(self, key: Any, window: Window, inputs: Iterable[Any]) -> Iterable[Any] | None: ...


class WindowProcessContext(ProcessWindowFunction.Context):
    """The context the operators hand to process window functions; they set ``window_ns``."""

    def __init__(self, backend: Any, clock: Clock, watermark: Callable[[], int]) -> None:
        self.window_ns: WindowTuple = (0, 0)
        self._clock = clock
        self._watermark = watermark
        self._window_store = KeyedStateStore(backend, lambda: self.window_ns)
        self._global_store = KeyedStateStore(backend, lambda: None)
        self.side: dict[str, tuple[list[Any], list[int]]] = {}

    def window(self) -> Window:
        return to_window(self.window_ns)

    def current_processing_time(self) -> int:
        return self._clock.now_ms()

    def current_watermark(self) -> int:
        return self._watermark()

    def window_state(self) -> KeyedStateStore:
        return self._window_store

    def global_state(self) -> KeyedStateStore:
        return self._global_store

    def output(self, output_tag: OutputTag, value: Any) -> None:
        records, stamps = self.side.setdefault(output_tag.tag_id, ([], []))
        records.append(value)
        stamps.append(self.window_ns[1] - 1)


@dataclass(frozen=True)
class WindowContents:
    """How a window accumulates: ``"reduce"``, ``"aggregate"`` or ``"list"`` (all elements)."""

    kind: str
    reduce: Callable[[Any, Any], Any] | None = None
    aggregate: AggregateFunction[Any, Any, Any] | None = None

    def state_descriptor(self, name: str) -> StateDescriptor:
        if self.kind == "reduce":
            assert self.reduce is not None
            return ReducingStateDescriptor(name, self.reduce)
        if self.kind == "aggregate":
            assert self.aggregate is not None
            return AggregatingStateDescriptor(name, self.aggregate)
        return ListStateDescriptor(name)


def _window_function_kind(function: Any) -> str:
    if function is None:
        return "none"
    if isinstance(function, WindowFunction):
        return "apply"
    if isinstance(function, ProcessWindowFunction) or callable(function):
        return "process"
    raise errors.JobDefinitionError(
        f"a window function must be a ProcessWindowFunction, a WindowFunction or a callable "
        f"(key, context, elements); got {function!r}"
    )


class WindowResults:
    """Output records of one key's window from its result (reduce value, aggregate result, or
    the list of elements), through the user's window function if there is one."""

    def __init__(self, contents: WindowContents, function: Any | None) -> None:
        self.contents = contents
        self.function = function
        self.kind = _window_function_kind(function)
        self.passthrough = self.kind == "none"
        self.single = contents.kind != "list"
        self.context: WindowProcessContext | None = None
        self.has_clear = isinstance(function, ProcessWindowFunction) and (
            type(function).clear is not ProcessWindowFunction.clear
        )
        fn: Any = function
        if self.kind == "process":
            self._call: Callable[..., Any] = (
                fn.process if isinstance(fn, ProcessWindowFunction) else fn
            )
        elif self.kind == "apply":
            self._call = fn.apply

    def bind(self, context: WindowProcessContext) -> None:
        self.context = context

    def emit(self, key: Any, window: WindowTuple, result: Any) -> Iterable[Any] | None:
        if self.passthrough:
            return (result,)
        elements = [result] if self.single else result
        if self.kind == "apply":
            return self._call(key, to_window(window), elements)  # type: ignore[no-any-return]
        context = self.context
        assert context is not None
        context.window_ns = window
        return self._call(key, context, elements)  # type: ignore[no-any-return]

    def clear(self, window: WindowTuple) -> None:
        """The user's ``clear(context)`` hook at window cleanup (key already current)."""
        context = self.context
        assert context is not None and isinstance(self.function, ProcessWindowFunction)
        context.window_ns = window
        self.function.clear(context)

    def functions(self) -> list[Any]:
        return [self.function]
