"""``DataStream`` and ``KeyedStream``: the fluent API that records transformations.

Methods mirror PyFlink (``map``, ``flat_map``, ``filter``, ``key_by``, ``process``, ``union``,
``connect``, ``get_side_output``, ``sink_to``, ``print``); ``name``, ``uid``,
``set_parallelism`` and friends configure the operator just added and return the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamjob import errors, functions
from streamjob.connectors.basic_sinks import CollectSink, PrintSink
from streamjob.connectors.sink import Sink
from streamjob.runtime.operators import keyed, stateless
from streamjob.runtime.operators.base import StreamOperator
from streamjob.runtime.operators.io import SinkOperator
from streamjob.runtime.partitioners import PartitionKind
from streamjob.runtime.transformations import Transformation

if TYPE_CHECKING:
    from streamjob.api.connected import ConnectedStreams
    from streamjob.api.environment import StreamEnvironment
    from streamjob.windows.stream import WindowedStream


def _key_function(key_selector: Any) -> Callable[[Any], Any]:
    if isinstance(key_selector, functions.KeySelector):
        return key_selector.get_key
    if callable(key_selector):
        return key_selector  # type: ignore[no-any-return]
    raise errors.JobDefinitionError(
        f"key_by needs a callable or a KeySelector, got {key_selector!r}"
    )


def _check_function(function: Any, method: str, what: str) -> None:
    if isinstance(function, functions.Function):
        if not callable(getattr(function, method, None)):
            raise errors.JobDefinitionError(f"{what}: {function!r} has no {method}() method")
    elif not callable(function):
        raise errors.JobDefinitionError(
            f"{what} needs a function or a {method}() object, got {function!r}"
        )


class DataStream:
    def __init__(self, env: StreamEnvironment, transformation: Transformation) -> None:
        self.env = env
        self.transformation = transformation

    # -- configuring the last operator --------------------------------------------------
    def _physical(self, what: str) -> Transformation:
        t = self.transformation
        if t.is_virtual:
            raise errors.JobDefinitionError(
                f"{what} applies to an operator; call it right after map/process/... instead "
                "of after key_by/union/side outputs"
            )
        return t

    def name(self, name: str) -> DataStream:
        self._physical("name()").name = name
        return self

    def uid(self, uid: str) -> DataStream:
        if not uid:
            raise errors.JobDefinitionError("uid must be a non-empty string")
        self._physical("uid()").uid = uid
        return self

    def set_parallelism(self, parallelism: int) -> DataStream:
        if parallelism < 1:
            raise errors.JobDefinitionError(f"parallelism must be >= 1, got {parallelism}")
        t = self._physical("set_parallelism()")
        if t.kind == "source":
            source = getattr(t, "source_max_parallelism", None)
            if source is not None and parallelism > source:
                raise errors.JobDefinitionError(
                    f"source '{t.name}' is not parallel (max {source}), got {parallelism}"
                )
        t.parallelism = parallelism
        return self

    def set_max_parallelism(self, max_parallelism: int) -> DataStream:
        self._physical("set_max_parallelism()").max_parallelism = max_parallelism
        return self

    def disable_chaining(self) -> DataStream:
        self._physical("disable_chaining()").chaining = False
        return self

    def get_parallelism(self) -> int:
        return self.transformation.parallelism or self.env.get_parallelism()

    # -- transformations ------------------------------------------------------------------
    def _one_input(
        self, name: str, factory: Callable[[], StreamOperator], *, keyed_op: bool = False
    ) -> DataStream:
        t = self.env._add(
            name,
            "one_input",
            inputs=[self.transformation],
            operator_factory=factory,
            keyed=keyed_op,
        )
        return DataStream(self.env, t)

    def map(self, func: Any, name: str | None = None) -> DataStream:
        _check_function(func, "map", "map")
        return self._one_input(name or "Map", lambda: stateless.MapOperator(self.env._copy(func)))

    def flat_map(self, func: Any, name: str | None = None) -> DataStream:
        _check_function(func, "flat_map", "flat_map")
        return self._one_input(
            name or "FlatMap", lambda: stateless.FlatMapOperator(self.env._copy(func))
        )

    def filter(self, func: Any, name: str | None = None) -> DataStream:
        _check_function(func, "filter", "filter")
        return self._one_input(
            name or "Filter", lambda: stateless.FilterOperator(self.env._copy(func))
        )

    def process(self, func: Any, name: str | None = None) -> DataStream:
        if isinstance(func, functions.KeyedProcessFunction):
            raise errors.JobDefinitionError(
                "a KeyedProcessFunction needs a keyed stream: call key_by(...) first"
            )
        _check_function(func, "process_element", "process")
        return self._one_input(
            name or "Process", lambda: stateless.ProcessOperator(self.env._copy(func))
        )

    def key_by(self, key_selector: Any) -> KeyedStream:
        selector = _key_function(key_selector)
        t = self.env._add(
            "KeyBy",
            "partition",
            inputs=[self.transformation],
            partition=PartitionKind.HASH,
            key_selector=selector,
        )
        return KeyedStream(self.env, t)

    def _partition(self, kind: PartitionKind) -> DataStream:
        t = self.env._add(kind.value, "partition", inputs=[self.transformation], partition=kind)
        return DataStream(self.env, t)

    def rebalance(self) -> DataStream:
        return self._partition(PartitionKind.REBALANCE)

    def broadcast(self) -> DataStream:
        return self._partition(PartitionKind.BROADCAST)

    def forward(self) -> DataStream:
        return self._partition(PartitionKind.FORWARD)

    def union(self, *streams: DataStream) -> DataStream:
        for s in streams:
            if s.env is not self.env:
                raise errors.JobDefinitionError("union() needs streams of the same environment")
        t = self.env._add(
            "Union", "union", inputs=[self.transformation, *(s.transformation for s in streams)]
        )
        return DataStream(self.env, t)

    def connect(self, other: DataStream) -> ConnectedStreams:
        from streamjob.api.connected import ConnectedStreams

        return ConnectedStreams(self, other)

    def get_side_output(self, output_tag: functions.OutputTag) -> DataStream:
        t = self.env._add(
            f"SideOutput[{output_tag.tag_id}]",
            "side",
            inputs=[self._physical("get_side_output()")],
            side_tag=output_tag.tag_id,
        )
        return DataStream(self.env, t)

    def assign_timestamps_and_watermarks(self, watermark_strategy: Any) -> DataStream:
        from streamjob.eventtime.operator import TimestampsAndWatermarksOperator

        interval = self.env.auto_watermark_interval_ms
        return self._one_input(
            "Timestamps/Watermarks",
            lambda: TimestampsAndWatermarksOperator(watermark_strategy, interval),
        )

    # -- sinks --------------------------------------------------------------------------
    def sink_to(self, sink: Sink, name: str | None = None) -> DataStream:
        if not isinstance(sink, Sink):
            raise errors.JobDefinitionError(f"sink_to needs a Sink, got {sink!r}")
        t = self.env._add(
            name or f"Sink: {sink.name}",
            "sink",
            inputs=[self.transformation],
            operator_factory=lambda: SinkOperator(sink),
            connector=sink,
        )
        return DataStream(self.env, t)

    add_sink = sink_to

    def print(self, prefix: str = "") -> DataStream:
        return self.sink_to(PrintSink(prefix), name="Print")

    def execute_and_collect(self, job_name: str = "collect") -> list[Any]:
        """Run the job locally and return this stream's records (tests, notebooks)."""
        out: list[Any] = []
        self.sink_to(CollectSink(out), name="Collect")
        self.env.execute(job_name)
        return out


class KeyedStream(DataStream):
    """A stream partitioned by key: keyed state, timers and windows are available."""

    def _keyed(self, name: str, factory: Callable[[], StreamOperator]) -> DataStream:
        return self._one_input(name, factory, keyed_op=True)

    def process(self, func: Any, name: str | None = None) -> DataStream:
        _check_function(func, "process_element", "process")
        return self._keyed(
            name or "KeyedProcess", lambda: keyed.KeyedProcessOperator(self.env._copy(func))
        )

    def reduce(self, func: Any, name: str | None = None) -> DataStream:
        _check_function(func, "reduce", "reduce")
        return self._keyed(name or "Reduce", lambda: keyed.ReduceOperator(self.env._copy(func)))

    def _aggregate(self, kind: str, field: int | str | None) -> DataStream:
        fn = keyed.aggregation(kind, field)
        label = kind.capitalize() if field is None else f"{kind.capitalize()}({field})"
        return self._keyed(label, lambda: keyed.ReduceOperator(fn))

    def sum(self, position_to_sum: int | str | None = None) -> DataStream:
        return self._aggregate("sum", position_to_sum)

    def min(self, position_to_min: int | str | None = None) -> DataStream:
        return self._aggregate("min", position_to_min)

    def max(self, position_to_max: int | str | None = None) -> DataStream:
        return self._aggregate("max", position_to_max)

    def min_by(self, position_to_min_by: int | str | None = None) -> DataStream:
        return self._aggregate("min_by", position_to_min_by)

    def max_by(self, position_to_max_by: int | str | None = None) -> DataStream:
        return self._aggregate("max_by", position_to_max_by)

    def window(self, window_assigner: Any) -> WindowedStream:
        from streamjob.windows.stream import WindowedStream

        return WindowedStream(self, window_assigner)
