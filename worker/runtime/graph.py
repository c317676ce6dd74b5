"""Building the execution plan from the logical graph (pure: no I/O, no asyncio).

1. Resolve virtual transformations into :class:`StreamEdge` s between physical nodes: the
   nearest partitioning hint wins, unions fan in, side outputs select a tag.
2. Give every node its parallelism and max parallelism and a uid.
3. Chain: an edge is chained when it is forward, both ends have equal parallelism, the target
   has that single input and chaining is not disabled. Each chain is a :class:`JobVertex`.

The same plan is built by every process that imports the job, so it must be deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamjob import errors, keygroups
from streamjob.runtime.partitioners import PartitionKind
from streamjob.runtime.transformations import Transformation


@dataclass(eq=False)
class StreamNode:
    transformation: Transformation
    parallelism: int
    max_parallelism: int
    uid: str

    @property
    def id(self) -> int:
        return self.transformation.id

    @property
    def name(self) -> str:
        return self.transformation.name


@dataclass(frozen=True)
class StreamEdge:
    source_id: int
    target_id: int
    partition: PartitionKind
    key_selector: Callable[[Any], Any] | None
    input_index: int
    side_tag: str | None


@dataclass(eq=False)
class JobVertex:
    id: int
    node_ids: list[int]  # chain order: head first, then topological
    parallelism: int
    max_parallelism: int
    name: str
    is_source: bool
    #: chained edges inside the vertex
    internal_edges: list[StreamEdge] = field(default_factory=list)


@dataclass(frozen=True)
class JobEdge:
    id: int
    source_vertex: int
    target_vertex: int
    edge: StreamEdge


@dataclass
class JobGraph:
    nodes: dict[int, StreamNode]
    vertices: list[JobVertex]
    edges: list[JobEdge]
    vertex_of_node: dict[int, int]

    def inputs_of(self, vertex_id: int) -> list[JobEdge]:
        return [e for e in self.edges if e.target_vertex == vertex_id]

    def outputs_of(self, vertex_id: int) -> list[JobEdge]:
        return [e for e in self.edges if e.source_vertex == vertex_id]

    def fingerprint(self) -> str:
        """Identifies the graph's shape; processes of one job must agree on it."""
        text = repr(
            [
                (v.id, [(n, self.nodes[n].uid, self.nodes[n].name) for n in v.node_ids])
                for v in self.vertices
            ]
            + [(e.source_vertex, e.target_vertex, e.edge.partition.value) for e in self.edges]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


Producer = tuple[Transformation, PartitionKind | None, Callable[[Any], Any] | None, str | None]


def _resolve_single(parent: Transformation) -> list[Producer]:
    """Physical producers behind ``parent``, with the partitioning and side tag on the way.

    The partitioning hint nearest to the consumer wins (``a.rebalance().key_by(f)`` is keyed).
    """
    found: list[Producer] = []

    def walk(
        node: Transformation,
        partition: PartitionKind | None,
        selector: Callable[[Any], Any] | None,
        side: str | None,
    ) -> None:
        if node.kind == "partition":
            if partition is None:
                partition, selector = node.partition, node.key_selector
            for upstream in node.inputs:
                walk(upstream, partition, selector, side)
        elif node.kind == "union":
            for upstream in node.inputs:
                walk(upstream, partition, selector, side)
        elif node.kind == "side":
            for upstream in node.inputs:
                walk(upstream, partition, selector, node.side_tag)
        else:
            found.append((node, partition, selector, side))

    walk(parent, None, None, None)
    return found


def build_job_graph(
    transformations: list[Transformation],
    *,
    default_parallelism: int,
    default_max_parallelism: int | None = None,
    chaining: bool = True,
    adopted_max_parallelism: dict[str, int] | None = None,
) -> JobGraph:
    """``adopted_max_parallelism`` (uid -> value, from a restored checkpoint) is used for
    operators without an explicit max parallelism; an explicit different one is refused by
    the restore check, naming both."""
    adopted = adopted_max_parallelism or {}
    physical = [t for t in transformations if not t.is_virtual]
    if not physical:
        raise errors.JobDefinitionError("the job has no operators: add a source and a sink")
    nodes: dict[int, StreamNode] = {}
    uids: set[str] = set()
    for t in physical:
        parallelism = t.parallelism or default_parallelism
        uid = t.uid or f"auto-{t.id}-{t.name.lower().replace(' ', '_')}"
        max_p = t.max_parallelism or default_max_parallelism or adopted.get(uid)
        max_p = max_p or keygroups.default_max_parallelism(parallelism)
        keygroups.check_parallelism(parallelism, max_p)
        if uid in uids:
            raise errors.JobDefinitionError(
                f"uid {uid!r} is used by two operators; uids name state in checkpoints and "
                "must be unique"
            )
        uids.add(uid)
        nodes[t.id] = StreamNode(t, parallelism, max_p, uid)

    edges: list[StreamEdge] = []
    for t in physical:
        for position, parent in enumerate(t.inputs):
            logical = t.input_indices[position] if t.input_indices else 0
            for producer, part, sel, side in _resolve_single(parent):
                edges.append(_make_edge(nodes, producer, t, part, sel, side, logical))
    return _chain(nodes, physical, edges, chaining)


def _make_edge(
    nodes: dict[int, StreamNode],
    producer: Transformation,
    t: Transformation,
    part: PartitionKind | None,
    sel: Callable[[Any], Any] | None,
    side: str | None,
    logical: int,
) -> StreamEdge:
    src, dst = nodes[producer.id], nodes[t.id]
    if part is None:
        part = (
            PartitionKind.FORWARD if src.parallelism == dst.parallelism else PartitionKind.REBALANCE
        )
    if part is PartitionKind.FORWARD and src.parallelism != dst.parallelism:
        raise errors.JobDefinitionError(
            f"forward() between '{src.name}' (parallelism {src.parallelism}) and "
            f"'{dst.name}' (parallelism {dst.parallelism}) needs equal parallelism; "
            "use rebalance() or set the same parallelism"
        )
    return StreamEdge(producer.id, t.id, part, sel, logical, side)


def _chain(
    nodes: dict[int, StreamNode],
    physical: list[Transformation],
    edges: list[StreamEdge],
    chaining: bool,
) -> JobGraph:
    in_edges: dict[int, list[StreamEdge]] = {t.id: [] for t in physical}
    for e in edges:
        in_edges[e.target_id].append(e)

    def chainable(e: StreamEdge) -> bool:
        src, dst = nodes[e.source_id], nodes[e.target_id]
        return (
            chaining
            and e.partition is PartitionKind.FORWARD
            and src.parallelism == dst.parallelism
            and len(in_edges[e.target_id]) == 1
            and src.transformation.chaining
            and dst.transformation.chaining
            and dst.transformation.kind != "two_input"
        )

    head_of: dict[int, int] = {}
    for t in physical:  # creation order is topological
        ins = in_edges[t.id]
        if len(ins) == 1 and chainable(ins[0]):
            head_of[t.id] = head_of[ins[0].source_id]
        else:
            head_of[t.id] = t.id
    vertices: list[JobVertex] = []
    vertex_of_node: dict[int, int] = {}
    for t in physical:
        if head_of[t.id] == t.id:
            node = nodes[t.id]
            vertex = JobVertex(
                id=len(vertices),
                node_ids=[],
                parallelism=node.parallelism,
                max_parallelism=node.max_parallelism,
                name=t.name,
                is_source=t.kind == "source",
            )
            vertices.append(vertex)
        vertex = vertices[_index_of_head(vertices, nodes, head_of[t.id])]
        vertex.node_ids.append(t.id)
        vertex_of_node[t.id] = vertex.id
    job_edges: list[JobEdge] = []
    for e in edges:
        sv, tv = vertex_of_node[e.source_id], vertex_of_node[e.target_id]
        if sv == tv:
            vertices[sv].internal_edges.append(e)
        else:
            job_edges.append(JobEdge(len(job_edges), sv, tv, e))
    for v in vertices:
        if len(v.node_ids) > 1:
            v.name = " -> ".join(nodes[n].name for n in v.node_ids)
    return JobGraph(nodes, vertices, job_edges, vertex_of_node)


def _index_of_head(vertices: list[JobVertex], nodes: dict[int, StreamNode], head: int) -> int:
    for v in vertices:
        if v.node_ids and v.node_ids[0] == head:
            return v.id
    return len(vertices) - 1
