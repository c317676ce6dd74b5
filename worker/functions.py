"""User function types (PyFlink's names) and the contexts the runtime hands them.

Any callable works where a function is expected (``ds.map(lambda x: x + 1)``); the classes here
add ``open``/``close`` and a :class:`RuntimeContext` (subtask index, keyed state). Process
functions may ``yield`` their outputs (PyFlink style) or return an iterable or ``None``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from streamjob import errors
from streamjob.state.aggregate import AggregateFunction

if TYPE_CHECKING:
    from streamjob.runtime.operators.base import OperatorContext

__all__ = [
    "AggregateFunction",
    "CoProcessFunction",
    "FilterFunction",
    "FlatMapFunction",
    "Function",
    "KeySelector",
    "KeyedCoProcessFunction",
    "KeyedProcessContext",
    "KeyedProcessFunction",
    "MapFunction",
    "OnTimerContext",
    "OutputTag",
    "ProcessContext",
    "ProcessFunction",
    "ReduceFunction",
    "RuntimeContext",
    "TimeDomain",
    "TimerService",
]


@dataclass(frozen=True, slots=True)
class OutputTag:
    """Names a side output: ``ctx.output(tag, value)`` then ``stream.get_side_output(tag)``."""

    tag_id: str

    def __post_init__(self) -> None:
        if not self.tag_id:
            raise errors.JobDefinitionError("an OutputTag needs a non-empty name")


class TimeDomain(Enum):
    EVENT_TIME = 0
    PROCESSING_TIME = 1


class RuntimeContext:
    """What a rich function sees of the subtask it runs in (``open(ctx)``)."""

    def __init__(self, op_ctx: OperatorContext, backend: Any | None = None) -> None:
        self._op = op_ctx
        self._backend = backend

    def get_task_name(self) -> str:
        return self._op.task_name

    def get_index_of_this_subtask(self) -> int:
        return self._op.subtask_index

    def get_number_of_parallel_subtasks(self) -> int:
        return self._op.parallelism

    def get_max_number_of_parallel_subtasks(self) -> int:
        return self._op.max_parallelism

    def get_attempt_number(self) -> int:
        return self._op.attempt

    def get_job_parameter(self, key: str, default: Any = None) -> Any:
        return self._op.job_config.get(key, default)

    def _keyed_backend(self) -> Any:
        if self._backend is None:
            raise errors.StateError(
                f"operator '{self._op.operator_name}' asked for keyed state, which exists only "
                "on a keyed stream: call key_by(...) before this operator"
            )
        return self._backend

    def get_state(self, descriptor: Any) -> Any:
        return self._keyed_backend().get_state(descriptor)

    get_list_state = get_state
    get_map_state = get_state
    get_reducing_state = get_state
    get_aggregating_state = get_state


class Function(ABC):  # noqa: B024 - a marker base with optional lifecycle hooks
    """Base of rich functions: ``open`` before the first record, ``close`` at the end."""

    def open(self, runtime_context: RuntimeContext) -> None:  # noqa: B027
        """Called once per subtask before any record."""

    def close(self) -> None:  # noqa: B027
        """Called once per subtask after the last record (or on cancellation)."""


class MapFunction(Function):
    @abstractmethod
    def map(self, value: Any) -> Any: ...


class FlatMapFunction(Function):
    @abstractmethod
    def flat_map(self, value: Any) -> Iterable[Any]: ...


class FilterFunction(Function):
    @abstractmethod
    def filter(self, value: Any) -> bool: ...


class KeySelector(Function):
    @abstractmethod
    def get_key(self, value: Any) -> Any: ...


class ReduceFunction(Function):
    @abstractmethod
    def reduce(self, value1: Any, value2: Any) -> Any: ...


class TimerService(ABC):
    """Time and timers of the current key (keyed process functions)."""

    @abstractmethod
    def current_processing_time(self) -> int: ...

    @abstractmethod
    def current_watermark(self) -> int: ...

    @abstractmethod
    def register_event_time_timer(self, timestamp: int) -> None: ...

    @abstractmethod
    def register_processing_time_timer(self, timestamp: int) -> None: ...

    @abstractmethod
    def delete_event_time_timer(self, timestamp: int) -> None: ...

    @abstractmethod
    def delete_processing_time_timer(self, timestamp: int) -> None: ...


class ProcessContext(ABC):
    """The ``ctx`` of ``process_element``: the record's timestamp, side outputs, timers."""

    @abstractmethod
    def timestamp(self) -> int | None: ...

    @abstractmethod
    def output(self, output_tag: OutputTag, value: Any) -> None: ...

    @abstractmethod
    def timer_service(self) -> TimerService: ...


class KeyedProcessContext(ProcessContext):
    @abstractmethod
    def get_current_key(self) -> Any: ...


class OnTimerContext(KeyedProcessContext):
    @abstractmethod
    def time_domain(self) -> TimeDomain: ...


class ProcessFunction(Function):
    @abstractmethod
    def process_element(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None: ...


class KeyedProcessFunction(Function):
    """Per-key processing with keyed state and timers (``ctx.timer_service()``)."""

    @abstractmethod
    def process_element(self, value: Any, ctx: KeyedProcessContext) -> Iterable[Any] | None: ...

    def on_timer(self, timestamp: int, ctx: OnTimerContext) -> Iterable[Any] | None:
        return None


class CoProcessFunction(Function):
    """Processes two connected inputs; may share state between them."""

    @abstractmethod
    def process_element1(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None: ...

    @abstractmethod
    def process_element2(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None: ...


class KeyedCoProcessFunction(Function):
    @abstractmethod
    def process_element1(self, value: Any, ctx: KeyedProcessContext) -> Iterable[Any] | None: ...

    @abstractmethod
    def process_element2(self, value: Any, ctx: KeyedProcessContext) -> Iterable[Any] | None: ...

    def on_timer(self, timestamp: int, ctx: OnTimerContext) -> Iterable[Any] | None:
        return None
