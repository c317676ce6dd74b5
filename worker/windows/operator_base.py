"""What both window operators share: the spec, user-function lifecycle, outputs, late data.

:class:`WindowSpec` is what ``WindowedStream`` records when the job is built; the factory in
:mod:`streamjob.windows.stream` picks the window-major fast path
(:mod:`streamjob.windows.fast_operator`) or the generic path
(:mod:`streamjob.windows.generic_operator`) from it. Window results carry the window's
maximum timestamp (``end - 1``); records too late for every window go to the late-data side
output if there is one, else they are counted and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamjob import errors, functions
from streamjob.keygroups import KeyGroupAssigner
from streamjob.runtime.events import MIN_WATERMARK, Batch
from streamjob.runtime.operators.base import OperatorContext, Output, StreamOperator
from streamjob.runtime.operators.keyed import KeyedOperatorMixin
from streamjob.windows.assigners import WindowAssigner
from streamjob.windows.functions import WindowContents, WindowProcessContext, WindowResults
from streamjob.windows.triggers import Trigger

SECTION_WINDOWS = "windows"


@dataclass
class WindowSpec:
    assigner: WindowAssigner
    contents: WindowContents
    window_function: Any | None = None
    trigger: Trigger | None = None  # None: the assigner's default trigger
    allowed_lateness: int = 0
    late_tag: str | None = None
    #: user function objects whose open/close the operator calls
    user_functions: list[Any] = field(default_factory=list)


def missing_timestamps(operator: str, record: Any | None = None) -> errors.JobDefinitionError:
    which = "" if record is None else f" (record {record!r})"
    return errors.JobDefinitionError(
        f"operator '{operator}' uses event-time windows but its input records carry no "
        f"timestamp{which}: call assign_timestamps_and_watermarks(...) upstream, or pass a "
        "WatermarkStrategy with a timestamp assigner to from_source(...) (or give the source "
        "timestamps, e.g. GeneratorSource(timestamp_fn=...))"
    )


class WindowOperatorBase(KeyedOperatorMixin, StreamOperator):
    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.assigner = spec.assigner
        self.event_time = spec.assigner.is_event_time()
        self.lateness = spec.allowed_lateness if self.event_time else 0
        self.results = WindowResults(spec.contents, spec.window_function)
        self.late_tag = spec.late_tag
        self.watermark = MIN_WATERMARK
        self.num_late_records_dropped = 0
        self.side: dict[str, tuple[list[Any], list[int]]] = {}

    def setup(self, ctx: OperatorContext, output: Output) -> None:
        super().setup(ctx, output)
        self.key_groups = KeyGroupAssigner(ctx.max_parallelism)

    def open(self) -> None:
        runtime_context = functions.RuntimeContext(self.ctx, self.backend)
        for fn in self.spec.user_functions:
            if isinstance(fn, functions.Function):
                fn.open(runtime_context)
        self.process_context = WindowProcessContext(
            self.backend, self.ctx.clock, lambda: self.watermark
        )
        self.results.bind(self.process_context)

    def close(self) -> None:
        for fn in self.spec.user_functions:
            if isinstance(fn, functions.Function):
                fn.close()

    # -- outputs ----------------------------------------------------------------------------
    def emit_results(self, out: list[Any], out_ts: list[int] | None) -> None:
        """Emit window results, then anything the window functions sent to side outputs."""
        if out:
            self.output.emit(Batch(out, out_ts))
        side = self.process_context.side
        if side:
            for tag, (records, stamps) in side.items():
                self.output.emit_side(tag, Batch(records, stamps))
            self.process_context.side = {}

    def emit_late(self, records: list[Any], timestamps: list[int]) -> None:
        if not records:
            return
        if self.late_tag is None:
            self.num_late_records_dropped += len(records)
        else:
            self.output.emit_side(self.late_tag, Batch(records, timestamps))

    def set_key(self, key: Any, key_group: int | None = None) -> None:
        backend = self.backend
        backend.current_key = key
        backend.current_key_group = (
            self.key_groups.key_group(key) if key_group is None else key_group
        )
