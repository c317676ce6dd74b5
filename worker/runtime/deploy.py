"""Turning one subtask of a :class:`JobVertex` into a runnable :class:`Task`.

The local executor and the TaskManager both call :func:`build_task`; they differ only in the
:class:`ChannelFactory` (in-memory pairs versus TCP) — one engine, two deployments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from streamjob.keygroups import KeyGroupRange
from streamjob.runtime.channels import InputChannel, OutputChannel
from streamjob.runtime.config import ExecutionConfig
from streamjob.runtime.gate import InputGate
from streamjob.runtime.graph import JobEdge, JobGraph, JobVertex
from streamjob.runtime.operators.base import (
    ChainedOutput,
    OperatorContext,
    Output,
    RoutingOutput,
    StreamOperator,
    WriterOutput,
)
from streamjob.runtime.operators.io import SourceOperator
from streamjob.runtime.partitioners import (
    BroadcastPartitioner,
    ForwardPartitioner,
    KeyGroupPartitioner,
    Partitioner,
    PartitionKind,
    RebalancePartitioner,
)
from streamjob.runtime.task import Task
from streamjob.runtime.writer import RecordWriter

BackendFactory = Callable[..., Any]


class ChannelFactory(Protocol):
    def output_channel(
        self, edge: JobEdge, source_index: int, target_index: int
    ) -> OutputChannel: ...

    def input_channel(
        self, edge: JobEdge, source_index: int, target_index: int
    ) -> InputChannel: ...


def channel_pairs(graph: JobGraph, edge: JobEdge) -> list[tuple[int, int]]:
    """(source subtask, target subtask) of every channel of ``edge``."""
    src = graph.vertices[edge.source_vertex].parallelism
    dst = graph.vertices[edge.target_vertex].parallelism
    if edge.edge.partition is PartitionKind.FORWARD:
        return [(i, i) for i in range(src)]
    return [(i, j) for i in range(src) for j in range(dst)]


def make_partitioner(graph: JobGraph, edge: JobEdge, subtask_index: int) -> Partitioner:
    target = graph.vertices[edge.target_vertex]
    kind = edge.edge.partition
    if kind is PartitionKind.FORWARD:
        return ForwardPartitioner()
    if kind is PartitionKind.HASH:
        assert edge.edge.key_selector is not None
        node = graph.nodes[edge.edge.target_id]
        return KeyGroupPartitioner(
            edge.edge.key_selector, target.parallelism, node.max_parallelism, node.name
        )
    if kind is PartitionKind.REBALANCE:
        return RebalancePartitioner(target.parallelism, start=subtask_index)
    return BroadcastPartitioner(target.parallelism)


def create_backend(
    config: ExecutionConfig, max_parallelism: int, key_group_range: KeyGroupRange
) -> Any:
    """The keyed state backend of one operator subtask: ``hashmap`` (dicts) or ``rocksdb``.

    RocksDB works in a temporary directory of its own under the job configuration's
    ``state_dir`` (default: the system's temp directory), removed when the backend is disposed;
    its tuning comes from the job configuration (:class:`streamjob.state.rocksdb.RocksDBOptions`).
    """
    if config.state_backend == "hashmap":
        from streamjob.state.hashmap import HashMapStateBackend

        return HashMapStateBackend(
            max_parallelism=max_parallelism, key_group_range=key_group_range, clock=config.clock
        )
    if config.state_backend == "rocksdb":
        from streamjob.state.rocksdb import RocksDBOptions, RocksDBStateBackend

        state_dir = config.job_config.get("state_dir")
        return RocksDBStateBackend(
            max_parallelism=max_parallelism,
            key_group_range=key_group_range,
            clock=config.clock,
            options=RocksDBOptions.from_config(config.job_config),
            directory=None if state_dir is None else str(state_dir),
        )
    raise ValueError(
        f"unknown state backend {config.state_backend!r}; choose 'hashmap' or 'rocksdb'"
    )


def build_task(
    graph: JobGraph,
    vertex: JobVertex,
    subtask_index: int,
    channels: ChannelFactory,
    config: ExecutionConfig,
) -> Task:
    operators: dict[int, StreamOperator] = {}
    for node_id in vertex.node_ids:
        factory = graph.nodes[node_id].transformation.operator_factory
        assert factory is not None
        operators[node_id] = factory()

    writers: list[RecordWriter] = []
    outputs: dict[int, tuple[list[Output], dict[str, list[Output]]]] = {
        n: ([], {}) for n in vertex.node_ids
    }

    def add_output(source_id: int, side_tag: str | None, output: Output) -> None:
        main, side = outputs[source_id]
        if side_tag is None:
            main.append(output)
        else:
            side.setdefault(side_tag, []).append(output)

    for edge in vertex.internal_edges:
        add_output(edge.source_id, edge.side_tag, ChainedOutput(operators[edge.target_id]))
    for job_edge in graph.outputs_of(vertex.id):
        targets = [
            channels.output_channel(job_edge, i, j)
            for i, j in channel_pairs(graph, job_edge)
            if i == subtask_index
        ]
        writer = RecordWriter(
            make_partitioner(graph, job_edge, subtask_index),
            targets,
            batch_size=config.batch_size,
        )
        writers.append(writer)
        add_output(job_edge.edge.source_id, job_edge.edge.side_tag, WriterOutput(writer))

    task_name = f"{vertex.name} ({subtask_index + 1}/{vertex.parallelism})"
    gate_channels: list[InputChannel] = []
    input_of: list[int] = []
    for job_edge in graph.inputs_of(vertex.id):
        for i, j in channel_pairs(graph, job_edge):
            if j == subtask_index:
                gate_channels.append(channels.input_channel(job_edge, i, j))
                input_of.append(job_edge.edge.input_index)

    task_ref: list[Task] = []

    def wake() -> None:
        # Remote data may arrive before the task exists; it waits in the gate's ready queue.
        if task_ref:
            task_ref[0].wake()

    gate = InputGate(gate_channels, input_of, wake) if gate_channels else None
    for node_id in vertex.node_ids:
        node = graph.nodes[node_id]
        op = operators[node_id]
        kg_range = KeyGroupRange.of_operator(subtask_index, node.parallelism, node.max_parallelism)
        ctx = OperatorContext(
            operator_name=node.name,
            uid=node.uid,
            task_name=task_name,
            subtask_index=subtask_index,
            parallelism=node.parallelism,
            max_parallelism=node.max_parallelism,
            clock=config.clock,
            attempt=config.attempt,
            key_group_range=kg_range,
            job_config=config.job_config,
            mailbox=lambda action: task_ref[0].post(action),
        )
        main, side = outputs[node_id]
        op.setup(ctx, RoutingOutput(main, side))
        if op.is_keyed:
            op.set_keyed_backend(create_backend(config, node.max_parallelism, kg_range))  # type: ignore[attr-defined]
        if isinstance(op, SourceOperator):
            op.interval_ms = config.auto_watermark_interval_ms
    task = Task(
        name=task_name,
        vertex_id=vertex.id,
        subtask_index=subtask_index,
        operators=[operators[n] for n in vertex.node_ids],
        gate=gate,
        writers=writers,
        batch_size=config.batch_size,
        linger_s=config.linger_s,
    )
    task_ref.append(task)
    return task
