"""The logical graph: transformations recorded by the DataStream API, in creation order.

Physical transformations create an operator per subtask (``operator_factory``); virtual ones
(partitioning hints, unions, side outputs) only shape the edges and vanish when the graph is
built (:mod:`streamjob.runtime.graph`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamjob.runtime.partitioners import PartitionKind

if TYPE_CHECKING:
    from streamjob.runtime.operators.base import StreamOperator


@dataclass(eq=False)
class Transformation:
    id: int
    name: str
    #: "source", "one_input", "two_input", "sink", or virtual: "partition", "union", "side"
    kind: str
    inputs: list[Transformation] = field(default_factory=list)
    operator_factory: Callable[[], StreamOperator] | None = None
    parallelism: int | None = None
    max_parallelism: int | None = None
    uid: str | None = None
    chaining: bool = True
    keyed: bool = False
    #: virtual "partition": how records reach the consumer
    partition: PartitionKind | None = None
    key_selector: Callable[[Any], Any] | None = None
    #: virtual "side": the side-output tag selected from the single input
    side_tag: str | None = None
    #: two-input operators: which logical input each entry of ``inputs`` feeds
    input_indices: list[int] = field(default_factory=list)
    #: the connector object of a source or sink (checked against the checkpoint settings)
    connector: Any = None

    @property
    def is_virtual(self) -> bool:
        return self.kind in ("partition", "union", "side")

    def describe(self) -> str:
        return f"{self.name} (uid {self.uid or 'auto'})"
